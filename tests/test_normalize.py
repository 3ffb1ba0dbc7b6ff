from cimedic.tools.logs.normalize import clean_line, strip_ansi, visible_text


def test_github_actions_timestamp_and_ansi_are_stripped() -> None:
    raw = "2024-05-14T09:12:03.1234567Z \x1b[36;1mpytest -q\x1b[0m"
    assert clean_line(raw) == "pytest -q"


def test_gitlab_section_marker_and_erase_line_are_removed() -> None:
    raw = 'section_start:1715677923:step_script\r\x1b[0KExecuting "step_script" stage of the job script'
    assert clean_line(raw) == 'Executing "step_script" stage of the job script'


def test_gitlab_coloured_command_echo() -> None:
    assert clean_line("\x1b[32;1m$ pip install -r requirements.txt\x1b[0;m") == "$ pip install -r requirements.txt"


def test_carriage_return_redraws_keep_the_final_state() -> None:
    assert visible_text("Downloading  10%\rDownloading  55%\rDownloading 100%") == "Downloading 100%"
    # A trailing \r (CRLF files) is not a redraw.
    assert clean_line("ERROR: boom\r") == "ERROR: boom"


def test_travis_fold_marker_with_erase_sequence() -> None:
    assert clean_line("travis_fold:end:git.checkout\r\x1b[0K") == "travis_fold:end:git.checkout"


def test_jenkins_timestamper_prefix() -> None:
    assert clean_line("[2024-05-14T09:12:03.123Z] + make") == "+ make"


def test_overlong_line_is_truncated_with_a_marker() -> None:
    text = clean_line("x" * 50_000, max_chars=200)
    assert text.startswith("x" * 200)
    assert text.endswith("…[truncated]")
    assert len(text) < 220


def test_strip_ansi_handles_osc_hyperlinks() -> None:
    assert strip_ansi("\x1b]8;;https://example.org\x07link\x1b]8;;\x07") == "link"
