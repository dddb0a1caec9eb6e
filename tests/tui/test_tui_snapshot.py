"""One SVG screenshot of the flow screen, compared for the strings a person must see."""

from __future__ import annotations

from tui_testlib import CAI_RECIPE, SIZE, svg_text

from cai_tui.tui.app import make_app


async def test_flow_screen_screenshot(tmp_path) -> None:
    app = make_app(recipe_path=CAI_RECIPE)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter", "n")
        await pilot.pause()
        path = tmp_path / "flow.svg"
        app.save_screenshot(str(path))
    shot = svg_text(path)
    for expected in (
        "cai-tui",
        "Stages",
        "Get the model",
        "Troubleshooting",  # the last stage fits in the list at 120x40
        "Stage 2 of 14",
        "Encrypt the model",
        "Covers: CAI-1.2 · CAI-1.3 · CAI-1.4 · CAI-1.5 · CAI-1.6",
        "Encryption method",
        "gocryptfs",
        "file:~/cachefs-password",
        "Recipe qwen2.5-3b-beijing (flow cai)",
        "Back",
        "Next stage",
        "中文",
    ):
        assert expected in shot, expected
