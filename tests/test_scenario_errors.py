"""Broken scenario files are rejected with every problem at its file, line and field path.

``tests/corpus/broken/*.yaml`` holds small scenarios with exactly one deliberate mistake each; the
first line of every file says what the loader must report:

    # expect: <line>: <dotted.field[path]>: <substring of the message>

(the field is empty for errors that belong to no field, such as invalid YAML).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import scenarios
from scenarios import InputError, Problem, load_scenario

CORPUS = Path(__file__).parent / "corpus" / "broken"
BASE = Path(scenarios.__file__).resolve().parent / "bases" / "eu-betting-stack.yaml"
EXPECT = re.compile(r"^# expect: (?P<line>\d+): (?P<field>[^:]*): (?P<message>.+)$")

def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.yaml"))


def _expectation(path: Path) -> tuple[int, str, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = EXPECT.match(first)
    assert m, f"{path.name}: first line must be '# expect: LINE: FIELD: MESSAGE', got {first!r}"
    return int(m["line"]), m["field"], m["message"].strip()


def _same_file(problem: Problem, path: Path) -> bool:
    return Path(problem.file).resolve() == path.resolve()


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(InputError) as info:
        load_scenario(path)
    problems = info.value.problems
    assert problems, "InputError raised without any problem"
    return problems


def _params() -> list:
    out = []
    for path in _corpus():
        out.append(pytest.param(path, id=path.stem))
    return out


def test_corpus_is_large_and_every_file_states_its_expectation():
    files = _corpus()
    assert len(files) >= 18
    for path in files:
        line, _field, message = _expectation(path)
        assert 1 <= line <= len(path.read_text(encoding="utf-8").splitlines())
        assert message


@pytest.mark.parametrize("path", _params())
def test_broken_scenario_reports_its_mistake(path: Path):
    line, field, message = _expectation(path)
    problems = _problems(path)
    matching = [p for p in problems
                if _same_file(p, path) and p.line == line and p.field == field
                and message in p.message]
    listed = "\n".join(str(p) for p in problems)
    assert matching, f"expected {line}: {field}: {message!r} among:\n{listed}"


def test_problem_renders_as_file_line_field_message():
    path = CORPUS / "wave_not_starting_at_zero.yaml"
    with pytest.raises(InputError) as info:
        load_scenario(path)
    text = str(info.value)
    assert f"{path}:8: traffic.wave[0].at: the wave must start at 0" in text.splitlines()
    assert str(Problem("f.yaml", 0, "", "cannot read")) == "f.yaml: cannot read"
    assert str(Problem("f.yaml", 3, "", "invalid YAML: x")) == "f.yaml:3: invalid YAML: x"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


SEVERAL_SHAPE_ERRORS = f"""\
extends: {BASE}
name: several-shape-errors
duration: -5
colour: red
traffic:
  peak_users: 1000
  wave:
    - {{at: 0, users: 0.5}}
    - {{at: 1800, users: 1.5}}
  spikes:
    - {{at: 900, factor: 0.5, decay: 60}}
  journeys: {{browse: 0.6, bettor: 0.4}}
autoscaling:
  bets: {{warmup: 45}}
chaos:
  - {{at: 600, action: meteor_strike, duration: 60}}
topology:
  services:
    bets:
      concurrency: sixteen
"""


def test_several_shape_errors_are_all_reported(tmp_path: Path):
    path = _write(tmp_path, "shape.yaml", SEVERAL_SHAPE_ERRORS)
    problems = _problems(path)
    got = {(p.line, p.field) for p in problems if _same_file(p, path)}
    expected = {
        (3, "duration"),
        (4, "colour"),
        (9, "traffic.wave[1].users"),
        (11, "traffic.spikes[0].factor"),
        (14, "autoscaling.bets.warmup"),
        (16, "chaos[0]"),
        (20, "topology.services.bets.concurrency"),
    }
    assert expected <= got, "\n".join(str(p) for p in problems)
    by_field = {p.field: p.message for p in problems}
    assert "greater than 0" in by_field["duration"]
    assert by_field["colour"] == "unknown key"
    assert "meteor_strike" in by_field["chaos[0]"]


SEVERAL_REFERENCE_ERRORS = f"""\
extends: {BASE}
name: several-reference-errors
duration: 3600
traffic:
  peak_users: 1000
  wave:
    - {{at: 30, users: 0.5}}
    - {{at: 1800, users: 1.0}}
  journeys:
    browse: 0.6
    scraper: {{weight: 0.4, steps: [{{step: fetch_oddz}}]}}
links:
  mix: {{wifi: 0.5, devtools_fast_4g: 0.4}}
autoscaling:
  betting: {{target: 0.6, max: 10}}
chaos:
  - {{id: outage, at: 600, action: zone_outage, zone: eu-west-d, duration: 300}}
  - {{id: outage, at: 900, action: cache_loss, cache: odds_cache, duration: 60}}
budgets:
  place_bets: ["p(99)<1500"]
"""


def test_several_cross_reference_errors_are_all_reported(tmp_path: Path):
    path = _write(tmp_path, "refs.yaml", SEVERAL_REFERENCE_ERRORS)
    problems = _problems(path)
    got = {(p.line, p.field): p.message for p in problems if _same_file(p, path)}
    listed = "\n".join(str(p) for p in problems)
    expected = {
        (7, "traffic.wave[0].at"): "must start at 0",
        (11, "traffic.journeys.scraper.steps[0].step"): "unknown step 'fetch_oddz'",
        (13, "links.mix"): "add up to 0.9",
        (15, "autoscaling.betting"): "unknown service 'betting'",
        (17, "chaos[0].zone"): "unknown zone 'eu-west-d'",
        (18, "chaos[1].id"): "used more than once",
        (20, "budgets.place_bets"): "unknown step 'place_bets'",
    }
    for key, message in expected.items():
        assert key in got, f"{key} missing from:\n{listed}"
        assert message in got[key]


def test_problems_are_sorted_by_line(tmp_path: Path):
    path = _write(tmp_path, "refs.yaml", SEVERAL_REFERENCE_ERRORS)
    lines = [p.line for p in _problems(path)]
    assert lines == sorted(lines)


def test_extends_cycle_is_reported(tmp_path: Path):
    a = _write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    _write(tmp_path, "b.yaml", "# the other half of the loop\nextends: a.yaml\n")
    problems = _problems(a)
    assert any(p.field == "extends" and "cycle" in p.message and p.line == 2
               and Path(p.file).name == "b.yaml" for p in problems), problems


def test_extends_to_itself_is_a_cycle(tmp_path: Path):
    a = _write(tmp_path, "self.yaml", "name: a\nextends: self.yaml\n")
    problems = _problems(a)
    assert [(p.line, p.field) for p in problems] == [(2, "extends")]
    assert "cycle" in problems[0].message


def test_missing_scenario_file_is_an_input_error(tmp_path: Path):
    problems = _problems(tmp_path / "nowhere.yaml")
    assert len(problems) == 1 and "cannot read" in problems[0].message


def test_non_mapping_scenario_is_an_input_error(tmp_path: Path):
    path = _write(tmp_path, "list.yaml", "- just\n- a list\n")
    problems = _problems(path)
    assert "must be a YAML mapping" in problems[0].message


def test_merge_key_override_is_not_a_duplicate(tmp_path: Path):
    path = _write(tmp_path, "merge.yaml", f"""\
extends: {BASE}
name: merge-keys
duration: 3600
traffic:
  peak_users: 1000
  wave:
    - {{at: 0, users: 0.5}}
    - {{at: 1800, users: 1.0}}
  journeys: {{browse: 0.6, bettor: 0.4}}
autoscaling:
  gateway: &hpa {{metric: cpu, target: 0.6, min: 2, max: 20}}
  bets: {{<<: *hpa, max: 30}}
""")
    s = load_scenario(path)
    assert (s.autoscaling["bets"].min, s.autoscaling["bets"].max) == (2, 30)
