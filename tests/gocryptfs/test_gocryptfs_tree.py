"""Writer and reader together, without the real binary: layout on disk, round trips, progress, workers, atomic
output, and errors that name the file. Unit tests use a fast scrypt config, except the top-level API test."""

from __future__ import annotations

import io
import os
import pickle
import socket
import stat
from pathlib import Path

import pytest
from gocryptfs_testlib import (
    LONG_DIR,
    LONG_FILE,
    NOT_LONG_FILE,
    PASSWORD,
    SIZES,
    build_sample_tree,
    data,
    tree_snapshot,
)

from cai_tui.events import Event
from cai_tui.gocryptfs import (
    PARTIAL_SUFFIX,
    Cipherdir,
    CipherdirNotEmpty,
    CipherdirWriter,
    CorruptFile,
    CorruptName,
    GocryptfsConfig,
    NotACipherdir,
    UnsupportedConfig,
    UnsupportedFileType,
    WrongPassword,
    cipher_size,
    decrypt_tree,
    encrypt_file,
    encrypt_tree,
    open_cipherdir,
    verify_password,
)
from cai_tui.gocryptfs.content import block_offset
from cai_tui.gocryptfs.names import DIRIV_NAME, LONGNAME_PREFIX

FastConfig = tuple[GocryptfsConfig, bytes]


def _write(src: Path, cipher: Path, fast_config: FastConfig, **kwargs: object) -> CipherdirWriter:
    config, master = fast_config
    with CipherdirWriter(cipher, config, master, **kwargs) as writer:  # type: ignore[arg-type]
        writer.add_tree(src)
    return writer


def _all_paths(root: Path) -> list[Path]:
    return [Path(d) / n for d, dirs, files in os.walk(root) for n in dirs + files]


def test_roundtrip_of_the_sample_tree(sample_tree: Path, tmp_path: Path, fast_config: FastConfig) -> None:
    cipher, out = tmp_path / "cipher", tmp_path / "out"
    writer = _write(sample_tree, cipher, fast_config)
    assert writer.stats.hardlinks == 1 and writer.stats.symlinks == 3
    stats = open_cipherdir(cipher, PASSWORD).decrypt_tree(out)
    assert tree_snapshot(out) == tree_snapshot(sample_tree)
    assert stats.plain_bytes == writer.stats.plain_bytes
    assert os.stat(out / "hard-a").st_ino == os.stat(out / "hard-b").st_ino
    # times are kept on the way in and out
    assert os.stat(out / "size-5000.bin").st_mtime_ns == os.stat(sample_tree / "size-5000.bin").st_mtime_ns
    assert os.lstat(out / "link-rel").st_mtime_ns == os.lstat(sample_tree / "link-rel").st_mtime_ns


def test_layout_on_disk(sample_tree: Path, tmp_path: Path, fast_config: FastConfig) -> None:
    cipher = tmp_path / "cipher"
    _write(sample_tree, cipher, fast_config)
    assert stat.S_IMODE((cipher / "gocryptfs.conf").stat().st_mode) == 0o400
    plain_names = {p.name for p in _all_paths(sample_tree)}
    names_on_disk = {p.name for p in _all_paths(cipher)}
    assert not plain_names & names_on_disk
    assert not [n for n in names_on_disk if n.endswith(PARTIAL_SUFFIX)]
    for path in [cipher] + [p for p in _all_paths(cipher) if not p.is_symlink() and p.is_dir()]:
        diriv = path / DIRIV_NAME
        assert diriv.stat().st_size == 16 and stat.S_IMODE(diriv.stat().st_mode) == 0o444
    longs = [p for p in cipher.iterdir() if p.name.startswith(LONGNAME_PREFIX)]
    name_files = [p for p in longs if p.name.endswith(".name")]
    # the 176-byte, 252-byte, 255-byte names, the long dir and the long symlink; not the 175-byte name
    assert len(name_files) == 5 and len(longs) == 10
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in name_files)
    cd = open_cipherdir(cipher, PASSWORD)
    for entry in cd.walk():
        src = sample_tree / entry.path
        st = src.lstat()
        if entry.kind == "file":
            assert os.stat(entry.cipher_path).st_size == cipher_size(st.st_size)
            assert stat.S_IMODE(entry.mode) == stat.S_IMODE(st.st_mode)  # mode bits kept, as gocryptfs does
        if entry.kind == "dir":
            assert stat.S_IMODE(entry.mode) == stat.S_IMODE(st.st_mode)
    assert os.stat(cd.lookup("empty").cipher_path).st_size == 0  # no header for empty files
    assert cd.lookup(LONG_FILE).cipher_path.split("/")[-1].startswith(LONGNAME_PREFIX)
    assert not cd.lookup(NOT_LONG_FILE).cipher_path.split("/")[-1].startswith(LONGNAME_PREFIX)
    assert os.stat(cd.lookup("hard-a").cipher_path).st_nlink == 2


def test_reader_api(sample_tree: Path, tmp_path: Path, fast_config: FastConfig) -> None:
    cipher = tmp_path / "cipher"
    _write(sample_tree, cipher, fast_config)
    cd = open_cipherdir(cipher, PASSWORD)
    files = dict((path, stream.read()) for path, stream in cd.iter_files())
    expected = {k: v[1] for k, v in tree_snapshot(sample_tree).items() if v[0] == "file"}
    assert files == expected
    paths = [e.path for e in cd.walk()]
    assert paths.index("nested") < paths.index("nested/a") < paths.index("nested/a/b/c/deep.txt")
    assert cd.read_file("size-5000.bin") == (sample_tree / "size-5000.bin").read_bytes()
    assert cd.read_file(f"{LONG_DIR}/{'f' * 180}") == (sample_tree / LONG_DIR / ("f" * 180)).read_bytes()
    assert cd.read_link("link-rel") == "nested/a/b/c/deep.txt"
    with cd.open("size-1MiB+3.bin") as f:
        f.seek(1 << 20)
        assert f.read() == (sample_tree / "size-1MiB+3.bin").read_bytes()[1 << 20 :]
    assert cd.lookup("size-4097.bin").size == 4097
    with pytest.raises(FileNotFoundError):
        cd.read_file("nested/missing")
    with pytest.raises(IsADirectoryError):
        cd.read_file("nested")
    with pytest.raises(NotADirectoryError):
        cd.read_file("size-1.bin/x")


def test_progress_workers_1(sample_tree: Path, tmp_path: Path, fast_config: FastConfig) -> None:
    calls: list[tuple[int, str]] = []
    writer = _write(sample_tree, tmp_path / "cipher", fast_config, progress=lambda e: calls.append((e.done, e.text)))
    done = [n for n, _ in calls]
    assert done == sorted(done) and done[-1] == writer.stats.plain_bytes
    unique_bytes = sum(len(v[1]) for k, v in tree_snapshot(sample_tree).items() if v[0] == "file" and k != "hard-b")
    assert writer.stats.plain_bytes == unique_bytes
    reported = {p for _, p in calls}
    assert {"empty", "size-0.bin", "size-1MiB+3.bin", "nested/a/b/c/deep.txt"} <= reported
    assert len([p for _, p in calls if p == "size-1MiB+3.bin"]) >= 2  # per-MiB updates inside a file


def test_workers_2_block_ranges_and_whole_files(tmp_path: Path, fast_config: FastConfig) -> None:
    src = build_sample_tree(tmp_path / "plain")
    (src / "big.bin").write_bytes(data(99, 40 * 4096 + 5))
    calls: list[tuple[int, str]] = []
    writer = _write(
        src,
        tmp_path / "cipher",
        fast_config,
        workers=2,
        progress=lambda e: calls.append((e.done, e.text)),
        parallel_min_size=64 * 1024,  # 1 MiB+3 and big.bin go as block ranges of 8 blocks
        range_blocks=8,
    )
    done = [n for n, _ in calls]
    assert done == sorted(done) and done[-1] == writer.stats.plain_bytes
    assert len([p for _, p in calls if p == "big.bin"]) == 6  # one report per range
    out = tmp_path / "out"
    open_cipherdir(tmp_path / "cipher", PASSWORD).decrypt_tree(out)
    assert tree_snapshot(out) == tree_snapshot(src)
    assert not [p for p in _all_paths(tmp_path / "cipher") if p.name.endswith(PARTIAL_SUFFIX)]


def test_failure_leaves_no_complete_looking_output(tmp_path: Path, fast_config: FastConfig) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    (src / "a-small").write_bytes(b"complete")
    (src / "b-big").write_bytes(data(5, 3 << 20))
    cipher = tmp_path / "cipher"

    def fail_in_big(event: Event) -> None:
        if event.text == "b-big":
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        _write(src, cipher, fast_config, progress=fail_in_big)
    assert not (cipher / "gocryptfs.conf").exists()
    with pytest.raises(NotACipherdir):
        open_cipherdir(cipher, PASSWORD)
    files = [p.name for p in cipher.iterdir() if p.name != DIRIV_NAME]
    assert len(files) == 1 and not files[0].endswith(PARTIAL_SUFFIX)  # only the finished small file


def test_leftover_partial_file_is_reported(sample_tree: Path, tmp_path: Path, fast_config: FastConfig) -> None:
    cipher = tmp_path / "cipher"
    _write(sample_tree, cipher, fast_config)
    victim = open_cipherdir(cipher, PASSWORD).lookup("size-5000.bin").cipher_path
    os.rename(victim, victim + PARTIAL_SUFFIX)
    cd = open_cipherdir(cipher, PASSWORD)
    with pytest.raises(CorruptName, match="unfinished write"):
        list(cd.walk())
    problems = cd.check()
    assert len(problems) == 1 and problems[0].cipher_path == victim + PARTIAL_SUFFIX
    assert "size-5000.bin" not in [e.path for e in cd.walk(strict=False)]


def test_encrypt_file_is_atomic(tmp_path: Path, fast_config: FastConfig) -> None:
    keys = fast_config[0].keys(fast_config[1])
    src = tmp_path / "src"
    src.write_bytes(data(3, 10_000))
    src.chmod(0o640)
    dst = tmp_path / "dst"
    (tmp_path / ("dst" + PARTIAL_SUFFIX)).write_bytes(b"stale partial from a crash")
    progress: list[int] = []
    assert encrypt_file(src, dst, keys.content, mode=0o640, progress=lambda e: progress.append(e.done)) == 10_000
    assert dst.stat().st_size == cipher_size(10_000) and stat.S_IMODE(dst.stat().st_mode) == 0o640
    assert not (tmp_path / ("dst" + PARTIAL_SUFFIX)).exists() and progress == [10_000]
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError):
        encrypt_file(missing, tmp_path / "dst2", keys.content)
    assert not (tmp_path / "dst2").exists() and not (tmp_path / ("dst2" + PARTIAL_SUFFIX)).exists()


def test_entry_by_entry_api(tmp_path: Path, fast_config: FastConfig) -> None:
    config, master = fast_config
    cipher = tmp_path / "cipher"
    with CipherdirWriter(cipher, config, master) as writer:
        writer.mkdir("models", mode=0o750)
        assert writer.add_fileobj(io.BytesIO(data(4, 70_000)), "models/weights.bin", mode=0o600) == 70_000
        writer.add_symlink("latest", "models/weights.bin")
        writer.add_fifo("pipe", mode=0o620)
        with pytest.raises(FileNotFoundError):
            writer.mkdir("no/parent")
    cd = open_cipherdir(cipher, PASSWORD)
    assert cd.read_file("models/weights.bin") == data(4, 70_000)
    assert stat.S_IMODE(cd.lookup("models").mode) == 0o750
    assert stat.S_IMODE(cd.lookup("models/weights.bin").mode) == 0o600
    assert cd.read_link("latest") == "models/weights.bin"
    assert cd.lookup("pipe").kind == "fifo"


def test_cipherdir_inside_the_source_is_skipped(tmp_path: Path, fast_config: FastConfig) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    (src / "a.txt").write_text("a")
    _write(src, src / "enc", fast_config)
    cd = open_cipherdir(src / "enc", PASSWORD)
    assert [e.path for e in cd.walk()] == ["a.txt"]


def test_unsupported_file_type(tmp_path: Path, fast_config: FastConfig) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(src / "sock"))
        with pytest.raises(UnsupportedFileType, match="sock"):
            _write(src, tmp_path / "cipher", fast_config)
    finally:
        sock.close()
    assert not (tmp_path / "cipher" / "gocryptfs.conf").exists()


def test_targets_must_be_empty(sample_tree: Path, tmp_path: Path, fast_config: FastConfig) -> None:
    config, master = fast_config
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(CipherdirNotEmpty):
        CipherdirWriter(busy, config, master)
    with pytest.raises(FileExistsError):  # CipherdirNotEmpty is also a FileExistsError
        encrypt_tree(sample_tree, busy, PASSWORD)
    cipher = tmp_path / "cipher"
    _write(sample_tree, cipher, fast_config)
    with pytest.raises(CipherdirNotEmpty):
        open_cipherdir(cipher, PASSWORD).decrypt_tree(busy)


def test_writer_refuses_other_formats(tmp_path: Path, fast_config: FastConfig) -> None:
    config, master = fast_config
    variant = GocryptfsConfig.from_json(
        config.to_json()
        .replace('"Raw64"\n', '"Raw64",\n\t\t"LongNameMax"\n')
        .replace("\t]\n}", '\t],\n\t"LongNameMax": 99\n}')
    )
    with pytest.raises(UnsupportedConfig):
        CipherdirWriter(tmp_path / "c", variant, master)


def test_errors_name_the_file(sample_tree: Path, tmp_path: Path, fast_config: FastConfig) -> None:
    cipher = tmp_path / "cipher"
    _write(sample_tree, cipher, fast_config)
    with pytest.raises(WrongPassword):
        open_cipherdir(cipher, b"not the password")
    cd = open_cipherdir(cipher, PASSWORD)
    target = cd.lookup("nested/a/mid.bin").cipher_path
    with open(target, "r+b") as f:
        f.seek(block_offset(1) + 100)
        byte = f.read(1)
        f.seek(block_offset(1) + 100)
        f.write(bytes([byte[0] ^ 0x80]))
    with pytest.raises(CorruptFile) as info:
        cd.read_file("nested/a/mid.bin")
    assert info.value.path == "nested/a/mid.bin" and info.value.block == 1 and info.value.cipher_path == target
    with pytest.raises(CorruptFile, match=r"nested/a/mid\.bin.*block 1"):
        cd.decrypt_tree(tmp_path / "out")
    assert [(p.path, getattr(p, "block", None)) for p in cd.check()] == [("nested/a/mid.bin", 1)]
    # errors survive a process pool (pickling)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.path, copy.block, str(copy)) == (info.value.path, 1, str(info.value))


def test_corrupt_names_and_dirivs(sample_tree: Path, tmp_path: Path, fast_config: FastConfig) -> None:
    cipher = tmp_path / "cipher"
    _write(sample_tree, cipher, fast_config)
    cd = open_cipherdir(cipher, PASSWORD)
    long_entry = cd.lookup(LONG_FILE)
    name_file = Path(long_entry.cipher_path + ".name")
    name_file.chmod(0o644)
    name_file.write_text("garbage")
    with pytest.raises(CorruptName) as info:
        list(cd.walk())
    assert info.value.cipher_path == long_entry.cipher_path and "does not decrypt" in str(info.value)
    name_file.unlink()
    with pytest.raises(CorruptName, match=r"\.name file"):
        list(cd.walk())
    name_file.write_text("x")
    nested_iv = Path(cd.lookup("nested").cipher_path) / DIRIV_NAME
    nested_iv.chmod(0o644)
    nested_iv.write_bytes(bytes(16))
    with pytest.raises(CorruptName) as info:
        cd.read_file("nested/a/mid.bin")
    assert info.value.path == "nested" and "diriv" in str(info.value)
    problems = cd.check()
    assert {p.cipher_path for p in problems} >= {str(nested_iv)}


def test_missing_conf_is_not_a_cipherdir(tmp_path: Path) -> None:
    with pytest.raises(NotACipherdir):
        open_cipherdir(tmp_path, PASSWORD)
    with pytest.raises(NotACipherdir):
        verify_password(tmp_path / "nope", PASSWORD)


def test_top_level_api_with_default_scrypt(sample_tree: Path, tmp_path: Path) -> None:
    cipher, out = tmp_path / "cipher", tmp_path / "out"
    stats = encrypt_tree(sample_tree, cipher, PASSWORD)
    assert stats.files == len(SIZES) + 18 and stats.dirs == 8
    config = Cipherdir.unlock(cipher, PASSWORD).config
    assert config.scrypt.n == 65536 and config.is_default_format
    assert verify_password(cipher, PASSWORD) and not verify_password(cipher, b"nope")
    decrypt_tree(cipher, out, PASSWORD)
    assert tree_snapshot(out) == tree_snapshot(sample_tree)
