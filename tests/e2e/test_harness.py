"""The harness itself: a flintd that wrote a sanitizer report fails its test.

The check (conftest.py) runs on every flintd the harness starts; these tests
show that it finds each sanitizer's report, takes none of flintd's own lines
for one, and fails a test at teardown whether its flintd came from the fixture
or from a Flintd the test made itself."""
import os

import pytest

import conftest
from conftest import BUILD, sanitizer_report

ASAN = """==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010
READ of size 8 at 0x602000000010 thread T0
    #0 0x55d0c0 in settle_answer src/api/api.c:250
SUMMARY: AddressSanitizer: heap-use-after-free src/api/api.c:250 in settle_answer
"""
UBSAN = "src/base/str.c:88:21: runtime error: signed integer overflow: 9223372036854775807 + 1\n"
LSAN = """==4242==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 64 byte(s) in 1 object(s) allocated from:
"""
CLEAN = ('ts=2026-01-01T00:00:00.000Z level=info sub=flintd msg="ready" version=0.1.0\n'
         'ts=2026-01-01T00:00:01.000Z level=warn sub=exec msg="build failed" '
         'log="runtime error: ERROR: AddressSanitizer in the user\'s own program"\n')


@pytest.mark.parametrize("report", [ASAN, UBSAN, LSAN])
def test_each_sanitizer_s_report_is_found(report):
    found = sanitizer_report(CLEAN + report + CLEAN)
    assert found.startswith(report.splitlines()[0])  # from its first line on


def test_flintd_s_own_lines_are_never_a_report():
    assert sanitizer_report(CLEAN) == ""
    assert sanitizer_report("") == ""


class LogOnly(conftest.Flintd):
    """A stopped flintd of which only the log exists."""

    def __init__(self, log_path):
        self.log_path = str(log_path)
        self.data_dir = os.path.dirname(self.log_path)
        self.proc = None
        self.sanitizers_checked = False


def test_the_check_fails_on_a_report_and_passes_a_clean_log(tmp_path):
    clean, dirty = tmp_path / "clean.log", tmp_path / "dirty.log"
    clean.write_text(CLEAN)
    dirty.write_text(CLEAN + UBSAN)
    conftest.check_sanitizers([LogOnly(clean)])
    with pytest.raises(pytest.fail.Exception) as e:
        conftest.check_sanitizers([LogOnly(clean), LogOnly(dirty)])
    assert "runtime error: signed integer overflow" in str(e.value)
    assert str(dirty) in str(e.value)


INNER = '''
from conftest import Flintd

def test_the_fixture_s_flintd_wrote_a_report(flintd):
    with open(flintd.log_path, "a") as f:
        f.write(%r)

def test_a_flintd_the_test_made_wrote_a_report(tmp_path):
    d = Flintd(tmp_path)
    with open(d.log_path, "a") as f:
        f.write(%r)

def test_a_clean_flintd_passes(flintd):
    with open(flintd.log_path, "a") as f:
        f.write(%r)
''' % (ASAN, UBSAN, CLEAN)


def test_a_test_whose_flintd_wrote_a_report_fails_at_teardown(pytester, monkeypatch):
    # a pytest run of its own, with this harness, on three tests that all pass
    monkeypatch.setenv("FLINT_BUILD", BUILD)
    with open(conftest.__file__) as f:
        pytester.makeconftest(f.read())
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=3, errors=2)
    out = result.stdout.str()
    assert "ERROR at teardown of test_the_fixture_s_flintd_wrote_a_report" in out
    assert "ERROR at teardown of test_a_flintd_the_test_made_wrote_a_report" in out
    assert "heap-use-after-free" in out and "signed integer overflow" in out
