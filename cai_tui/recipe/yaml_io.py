"""Recipe files: human-editable YAML, comments preserved on round trip, atomic 0600 writes.

Loading never raises anything but :class:`RecipeError` for bad input, and never changes the file.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .migrate import MigrationError, migrate
from .model import MODEL_BY_FLOW, RECIPE_ADAPTER, CaiRecipe, KataRecipe
from .problems import Problem, RecipeError, mapping_line, problems_from_validation
from .redaction import REDACTOR, Redactor

MAX_RECIPE_BYTES = 1024 * 1024


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


@dataclass
class LoadedRecipe:
    recipe: CaiRecipe | KataRecipe
    path: Path | None
    document: Any  # the ruamel CommentedMap, kept for comment-preserving saves
    notes: list[str] = field(default_factory=list)
    source: str = "<recipe>"  # the name problems cite (the file path, or what the text came from)


def _fail(file: str, message: str, line: int | None = None, fld: str = "") -> RecipeError:
    return RecipeError([Problem(file, line, fld, message)])


def read_text(path: Path) -> str:
    name = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _fail(name, "file not found") from None
    except OSError as e:
        raise _fail(name, f"cannot read: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(name, "is a directory; give a recipe file (.yaml)")
    if st.st_size > MAX_RECIPE_BYTES:
        raise _fail(name, f"file is {st.st_size} bytes; a recipe is a small YAML file (limit {MAX_RECIPE_BYTES} bytes)")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_RECIPE_BYTES + 1)
    except OSError as e:
        raise _fail(name, f"cannot read: {e.strerror}") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise _fail(name, f"file is larger than {MAX_RECIPE_BYTES} bytes; a recipe is a small YAML file")
    return decode(raw, name)


def decode(raw: bytes, name: str) -> str:
    if b"\x00" in raw:
        raise _fail(name, "binary file (contains NUL bytes); a recipe is UTF-8 YAML text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _fail(name, f"not UTF-8 text (bad byte at offset {e.start}); save the recipe as UTF-8") from None
    return text


def loads_recipe(text: str, name: str = "<recipe>", path: Path | None = None) -> LoadedRecipe:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if not text.strip() or all(line.lstrip().startswith("#") for line in text.splitlines() if line.strip()):
        raise _fail(name, "empty file; start from an example: cai-tui recipe new FILE --flow cai")
    try:
        doc = _yaml().load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = (e.problem or "malformed YAML").strip()
        raise _fail(name, f"malformed YAML: {problem}", line) from None
    except (YAMLError, RecursionError, ValueError) as e:
        raise _fail(name, f"malformed YAML: {type(e).__name__}") from None
    except Exception:  # the parser has internal failures on odd input (e.g. "+_" raises IndexError)
        raise _fail(name, "malformed YAML: the parser could not read it; check the syntax near the top") from None
    if not isinstance(doc, MutableMapping):
        kind = "a list" if isinstance(doc, list) else type(doc).__name__
        raise _fail(
            name, f"the top level must be a mapping of keys (schema_version, flow, name, answers…), not {kind}", 1
        )
    try:
        notes = migrate(doc)
    except MigrationError as e:
        raise _fail(name, str(e), mapping_line(doc, ["schema_version"]), "schema_version") from None
    flow = doc.get("flow")
    root = MODEL_BY_FLOW.get(flow) if isinstance(flow, str) else None
    try:
        recipe = RECIPE_ADAPTER.validate_python(_plain(doc))
    except ValidationError as e:
        problems = problems_from_validation(e, root or CaiRecipe, file=name, line_of=lambda loc: mapping_line(doc, loc))
        raise RecipeError(problems) from None
    return LoadedRecipe(recipe=recipe, path=path, document=doc, notes=notes, source=name)


def _plain(node: Any) -> Any:
    """ruamel nodes → plain Python (keeps pydantic's error 'input' free of ruamel wrapper types)."""
    if isinstance(node, Mapping):
        return {str(k) if not isinstance(k, (str, int)) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def load_recipe(path: str | os.PathLike[str]) -> LoadedRecipe:
    p = Path(path)
    return loads_recipe(read_text(p), str(p), p)


# --- saving -----------------------------------------------------------------------------------------


def recipe_data(recipe: CaiRecipe | KataRecipe) -> dict[str, Any]:
    """What a recipe file holds: the fields set by the user (defaults stay implicit) plus the header."""
    data = recipe.model_dump(mode="json", exclude_unset=True)
    head = {"schema_version": recipe.schema_version, "flow": recipe.flow, "name": recipe.name}
    return {**head, **{k: v for k, v in data.items() if k not in head}}


def _merge(doc: MutableMapping[str, Any], new: Mapping[str, Any], read: Mapping[str, Any] | None = None) -> None:
    """Make ``doc`` hold ``new``. ``read`` is what the model read from ``doc`` as it stands: a value the model reads
    as the new one (``http://h/trustee/`` for ``http://h/trustee``) keeps the user's text."""
    for key in [k for k in doc if k not in new]:
        del doc[key]
    for key, value in new.items():
        old = doc.get(key)
        was = read.get(key) if isinstance(read, Mapping) else None
        if isinstance(old, MutableMapping) and isinstance(value, Mapping):
            _merge(old, value, was if isinstance(was, Mapping) else None)
        elif old != value or type(old) is not type(value):
            if isinstance(old, list) and old == value:
                continue
            if key in doc and read is not None and key in read and was == value:
                continue
            doc[key] = value


def _read_back(doc: Any) -> dict[str, Any] | None:
    """What the model reads from ``doc`` as it stands (the recipe file's data), None when it does not validate."""
    try:
        return recipe_data(RECIPE_ADAPTER.validate_python(_plain(doc)))
    except (ValidationError, ValueError, TypeError):
        return None


def dumps_recipe(loaded: LoadedRecipe | CaiRecipe | KataRecipe) -> str:
    if isinstance(loaded, LoadedRecipe):
        doc = loaded.document
        recipe = loaded.recipe
    else:
        doc, recipe = None, loaded
    data = recipe_data(recipe)
    if doc is None:
        from ruamel.yaml.comments import CommentedMap

        doc = CommentedMap()
    _merge(doc, data, _read_back(doc))
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


def save_recipe(
    loaded: LoadedRecipe | CaiRecipe | KataRecipe,
    path: str | os.PathLike[str],
    *,
    redactor: Redactor = REDACTOR,
    backup: bool = True,
) -> Path:
    """Write atomically (temp + fsync + rename, mode 0600); the previous file is kept as FILE.bak."""
    target = Path(path)
    text = dumps_recipe(loaded)
    if len(redactor) and text in redactor:
        raise RecipeError(
            [Problem(str(target), None, "", "refusing to save: a resolved secret value would be written")]
        )
    atomic_write(target, text.encode("utf-8"), mode=0o600, backup=backup)
    if isinstance(loaded, LoadedRecipe):
        loaded.path = target
        loaded.source = str(target)
    return target


def _temp_copy(parent: Path, name: str, data: bytes, mode: int) -> str:
    """Write ``data`` to a new fsynced temp file beside the target; removes it again on failure."""
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _replace(tmp: str, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def atomic_write(target: Path, data: bytes, *, mode: int = 0o600, backup: bool = False) -> None:
    """Never leaves a half-written file at ``target``: on any failure the old content is intact.

    With ``backup``, the previous content is first kept as ``<target>.bak`` (also written atomically).
    """
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    if backup and target.exists():
        _replace(
            _temp_copy(parent, target.name + ".bak", target.read_bytes(), 0o600), target.with_name(target.name + ".bak")
        )
    _replace(_temp_copy(parent, target.name, data, mode), target)
    fsync_dir(parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable (best effort: not every filesystem lets a directory be synced)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
