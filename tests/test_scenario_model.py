"""The scenario model: catalogue, round trip, the wave, scaling, distributions, budgets, links, extends."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import scenarios
from scenarios import InputError, dump_scenario, load_scenario, parse_threshold
from scenarios.distributions import Dist
from scenarios.links import BUILTIN_PROFILES, Links
from scenarios.loader import scenario_from_text

BASE = Path(scenarios.__file__).resolve().parent / "bases" / "eu-betting-stack.yaml"
CATALOGUE = scenarios.catalogue()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- catalogue and round trip


def test_catalogue_is_not_empty_and_has_the_baseline():
    assert "league-saturday" in CATALOGUE
    assert all(p.suffix == ".yaml" and p.is_file() for p in CATALOGUE.values())


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_catalogue_scenario_loads(name: str):
    s = load_scenario(CATALOGUE[name])
    assert s.name == name  # a catalogue scenario is named after its file
    assert s.duration > 0 and s.traffic.peak_users > 0
    assert s.users_at(0.0) >= 0


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_catalogue_scenario_round_trips(name: str):
    s = load_scenario(CATALOGUE[name])
    text = dump_scenario(s)
    again = scenario_from_text(text, f"{name}.resolved.yaml")
    assert again == s
    assert dump_scenario(again) == text


def test_round_trip_of_a_rich_scenario(tmp_path: Path):
    s = load_scenario(_write(tmp_path, "rich.yaml", RICH))
    again = scenario_from_text(dump_scenario(s))
    assert again == s
    assert again.chaos[2].source == "eu-west"  # aliases ('from'/'to') survive the dump
    assert again.budgets.steps["place_bet"][1].window is not None
    assert again.budgets.steps["fetch_odds"][1].warn == "p(99)<3000"
    assert again.budgets.dr is not None and again.budgets.dr.rto_s == 60
    assert again.chaos[3].set is not None and again.chaos[3].profile is None


# ---------------------------------------------------------------- users_at

WAVE = f"""\
extends: {BASE}
name: wave-shapes
duration: 1000
traffic:
  peak_users: 1000
  wave:
    - {{at: 0, users: 0.2, phase: warm}}
    - {{at: 100, users: 0.6}}                 # ramp 0.2 -> 0.6
    - {{at: 200, users: 0.8, shape: step, phase: hot}}    # 0.6 until 200, then 0.8
    - {{at: 300, shape: hold}}                # 0.8 through 300
    - {{at: 400, users: 0.4, phase: cool}}   # ramp 0.8 -> 0.4, then constant
    - {{at: 700, users: 0.4, phase: hot}}
  spikes:
    - {{at: 600, factor: 2.0, rise: 10, decay: 50}}
    - {{at: 800, factor: 1.5, decay: 100}}    # no rise: full height at once
  journeys: {{browse: 1.0}}
"""


@pytest.fixture
def wave_scenario(tmp_path: Path) -> scenarios.Scenario:
    return load_scenario(_write(tmp_path, "wave.yaml", WAVE))


def _expected_users(t: float) -> float:
    """The WAVE scenario computed by hand."""
    if t <= 100:
        base = 0.2 + (0.6 - 0.2) * t / 100
    elif t < 200:
        base = 0.6
    elif t <= 300:
        base = 0.8
    elif t <= 400:
        base = 0.8 + (0.4 - 0.8) * (t - 300) / 100
    else:
        base = 0.4
    mult = 1.0
    if 600 <= t < 610:
        mult += (2.0 - 1) * (t - 600) / 10
    elif t >= 610:
        mult += (2.0 - 1) * math.exp(-(t - 610) / 50)
    if t >= 800:
        mult += (1.5 - 1) * math.exp(-(t - 800) / 100)
    return 1000 * base * mult


@pytest.mark.parametrize("t, users", [
    (0, 200.0),
    (50, 400.0),                # ramp half way
    (100, 600.0),
    (150, 600.0),               # before a step: the previous level
    (199.9, 600.0),
    (200, 800.0),               # the step
    (250, 800.0),
    (300, 800.0),               # hold
    (350, 600.0),               # ramp down from the held level
    (400, 400.0),
    (500, 400.0),
    (599.99, 400.0),
    (600, 400.0),               # spike starts with no excess
    (605, 400.0 * 1.5),         # half way up
    (610, 400.0 * 2.0),         # at its height
    (660, 400.0 * (1 + math.exp(-1.0))),
    (800, 400.0 * (1 + math.exp(-190 / 50) + 0.5)),
    (900, 400.0 * (1 + math.exp(-290 / 50) + 0.5 * math.exp(-1.0))),
    (1000, 400.0 * (1 + math.exp(-390 / 50) + 0.5 * math.exp(-2.0))),
    (5000, 400.0 * (1 + math.exp(-4390 / 50) + 0.5 * math.exp(-42.0))),  # after the last point
])
def test_users_at_hand_computed(wave_scenario, t, users):
    assert wave_scenario.users_at(t) == pytest.approx(users, rel=1e-12)
    assert users == pytest.approx(_expected_users(t), rel=1e-12)  # the table agrees with the formula


def test_users_at_is_constant_after_the_last_point(tmp_path: Path):
    s = load_scenario(_write(tmp_path, "flat.yaml", WAVE.replace(
        "  spikes:\n    - {at: 600, factor: 2.0, rise: 10, decay: 50}\n"
        "    - {at: 800, factor: 1.5, decay: 100}    # no rise: full height at once\n", "")))
    assert not s.traffic.spikes
    assert s.users_at(700) == s.users_at(1000) == s.users_at(1e6) == pytest.approx(400.0)


def test_users_at_scalar_in_float_out(wave_scenario):
    for t in (0, 150, 605.5, np.float64(605.5)):
        value = wave_scenario.users_at(t)
        assert type(value) is float


def test_users_at_array_in_array_out(wave_scenario):
    ts = np.array([0.0, 50.0, 199.9, 200.0, 350.0, 605.0, 900.0, 5000.0])
    got = wave_scenario.users_at(ts)
    assert isinstance(got, np.ndarray) and got.shape == ts.shape
    np.testing.assert_allclose(got, [_expected_users(t) for t in ts], rtol=1e-12)
    grid = ts.reshape(2, 4)
    got2 = wave_scenario.users_at(grid)
    assert isinstance(got2, np.ndarray) and got2.shape == (2, 4)
    np.testing.assert_allclose(got2.ravel(), got, rtol=1e-12)


def test_phase_windows_of_the_wave(wave_scenario):
    assert wave_scenario.phase_windows() == {
        "warm": [(0.0, 200.0)],
        "hot": [(200.0, 400.0), (700.0, 1000.0)],
        "cool": [(400.0, 700.0)],
    }


def test_phase_windows_of_league_saturday():
    s = load_scenario(CATALOGUE["league-saturday"])
    assert s.phase_windows() == {
        "build_up": [(0.0, 3600.0)],
        "first_half": [(3600.0, 6300.0)],
        "half_time": [(6300.0, 7200.0)],
        "second_half": [(7200.0, 9900.0)],
        "full_time": [(9900.0, 10800.0)],
    }


def test_journey_shares_are_normalised():
    s = load_scenario(CATALOGUE["league-saturday"])
    shares = s.traffic.journey_shares()
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["bettor"] == pytest.approx(0.18)
    assert [j.step for j in s.traffic.journeys["bettor"].steps] == [
        "login", "fetch_odds", "update_slip", "place_bet"]


# ---------------------------------------------------------------- scaled

RICH = f"""\
extends: {BASE}
name: rich
duration: 3600
traffic:
  peak_users: 20000
  wave:
    - {{at: 0, users: 0.2, phase: pre}}
    - {{at: 1200, users: 0.9, shape: step, phase: live}}
    - {{at: 2400, shape: hold}}
    - {{at: 3000, users: 0.5}}
  spikes:
    - {{at: 1500, factor: 2.5, rise: 30, decay: 90}}
  journeys: {{browse: 0.5, bettor: 0.4, cashout: 0.1}}
topology:
  services:
    bets: {{instances: 25}}
    kyc: {{instances: 0}}
autoscaling:
  bets:
    sync_period_s: 30
    min: 25
    max: 40
    scale_up: {{stabilization_s: 60, max_pods: 4, period_s: 15}}
    schedule: [{{at: 1000, min: 30, max: 40}}]
chaos:
  - {{id: outage, at: 1500, action: zone_outage, zone: eu-west-b, duration: 600}}
  - {{at: 1800, action: bot_flood, step: fetch_odds, rps: 500, duration: 300}}
  - {{at: 2500, action: region_failover, from: eu-west, to: eu-central, duration: 400}}
  - {{at: 2000, action: link_degradation, link: devtools_fast_4g, set: {{rtt_ms: 900}}, duration: 120}}
budgets:
  place_bet:
    - p(99)<1500
    - {{pass: "p(95)<900", window: [1200, 2400]}}
    - {{pass: recovery_time<120s, after: outage}}
  fetch_odds:
    - {{pass: "p(95)<800", phase: live, sliding_window_s: 60}}
    - {{pass: "p(99)<2000", warn: "p(99)<3000", during: outage, link: devtools_fast_4g}}
  dr: {{rto_s: 60, lost_bets: 0}}
"""


@pytest.fixture
def rich(tmp_path: Path) -> scenarios.Scenario:
    return load_scenario(_write(tmp_path, "rich.yaml", RICH))


def test_scaled_divides_match_time_and_scales_load(rich):
    c = rich.scaled(compress=10, load=0.1)
    assert c.duration == pytest.approx(360.0)
    assert [p.at for p in c.traffic.wave] == pytest.approx([0, 120, 240, 300])
    assert [p.users for p in c.traffic.wave] == [p.users for p in rich.traffic.wave]
    (spike,) = c.traffic.spikes
    assert (spike.at, spike.rise, spike.decay) == pytest.approx((150, 3, 9))
    assert spike.factor == 2.5
    assert [a.at for a in c.chaos] == pytest.approx([150, 180, 250, 200])
    assert [a.duration for a in c.chaos] == pytest.approx([60, 30, 40, 12])
    assert [a.end for a in c.chaos] == pytest.approx([210, 210, 290, 212])
    assert [list(w) for w in c.chaos_windows("outage")] == [pytest.approx([150, 210])]
    assert c.chaos[3].set.rtt_ms == 900  # a link's RTT is request-level time
    assert c.chaos[1].rps == pytest.approx(50)  # a request rate is load
    window = c.budgets.steps["place_bet"][1].window
    assert (window.start, window.end) == pytest.approx((120, 240))
    assert c.budgets.steps["fetch_odds"][0].sliding_window_s == pytest.approx(6)
    rule, orig = c.autoscaling["bets"], rich.autoscaling["bets"]
    assert rule.sync_period_s == pytest.approx(3.0)
    assert rule.scale_up.stabilization_s == pytest.approx(6.0)
    assert rule.scale_up.period_s == pytest.approx(1.5)
    assert rule.scale_down.stabilization_s == pytest.approx(orig.scale_down.stabilization_s / 10)
    # Metrics-pipeline delays are physical, like a pod's start-up: not compressed.
    assert rule.readiness_delay_s == orig.readiness_delay_s
    assert rule.cpu_initialization_s == orig.cpu_initialization_s
    assert rule.startup_s == orig.startup_s
    assert rule.schedule[0].at == pytest.approx(100)
    assert c.traffic.peak_users == pytest.approx(2000)
    assert c.phase_windows() == {"pre": [(0.0, 120.0)], "live": [(120.0, 360.0)]}


def test_scaled_instances_are_rounded_up_and_kept_at_least_one(rich):
    c = rich.scaled(compress=10, load=0.1)
    for name, svc in rich.topology.services.items():
        expected = max(1, math.ceil(svc.instances * 0.1)) if svc.instances >= 1 else 0
        assert c.topology.services[name].instances == expected, name
    assert c.topology.services["bets"].instances == 3       # ceil(2.5)
    assert c.topology.services["gateway"].instances == 1    # ceil(0.3)
    assert c.topology.services["kyc"].instances == 0        # no servers stays no servers
    rule = c.autoscaling["bets"]
    assert (rule.min, rule.max) == (3, 4)
    assert (rule.schedule[0].min, rule.schedule[0].max) == (3, 4)
    assert c.autoscaling["auth"].max == 2                   # ceil(1.2)


def test_scaled_leaves_request_level_times_alone(rich):
    c = rich.scaled(compress=10, load=0.1)
    for name, svc in rich.topology.services.items():
        assert c.topology.services[name].service_time_ms == svc.service_time_ms
        assert c.topology.services[name].concurrency == svc.concurrency
    for name, db in rich.topology.databases.items():
        assert c.topology.databases[name].service_time_ms == db.service_time_ms
    for name, cache in rich.topology.caches.items():
        assert c.topology.caches[name].service_time_ms == cache.service_time_ms
    assert c.topology.steps == rich.topology.steps
    assert c.traffic.journeys == rich.traffic.journeys  # think times
    assert c.traffic.journeys["browse"].steps[1].think_s.mean == 8.0
    assert c.links == rich.links
    assert c.autoscaling["bets"].startup_s == rich.autoscaling["bets"].startup_s
    assert c.budgets.steps["place_bet"][0].threshold == rich.budgets.steps["place_bet"][0].threshold


def test_scaled_divides_recovery_budgets(rich):
    c = rich.scaled(compress=10, load=0.1)
    assert c.budgets.steps["place_bet"][2].threshold.limit == pytest.approx(12.0)


def test_scaled_one_one_is_the_same_scenario(rich):
    assert rich.scaled(compress=1, load=1) == rich
    s = load_scenario(CATALOGUE["league-saturday"])
    assert s.scaled(compress=1, load=1) == s
    assert s.scaled() == s


def test_scaled_does_not_change_the_original(rich):
    before = dump_scenario(rich)
    rich.scaled(compress=10, load=0.1)
    assert dump_scenario(rich) == before


@pytest.mark.parametrize("compress, load", [(0, 1), (1, 0), (-2, 1)])
def test_scaled_rejects_non_positive_factors(rich, compress, load):
    with pytest.raises(ValueError):
        rich.scaled(compress=compress, load=load)


def _discontinuities(s: scenarios.Scenario) -> list[float]:
    steps = [p.at for p in s.traffic.wave if p.shape == "step"]
    return steps + [sp.at for sp in s.traffic.spikes if sp.rise == 0]


@pytest.mark.parametrize("which", ["wave", "rich", "league-saturday"])
@settings(max_examples=300, deadline=None)
@given(t=st.floats(min_value=0, max_value=12000, allow_nan=False))
def test_scaled_users_follow_the_original(which, t):
    s = _SCALE_CASES[which]
    assume(all(abs(t - d) > 1e-6 for d in _discontinuities(s)))
    c = s.scaled(compress=10, load=0.1)
    assert c.users_at(t / 10) == pytest.approx(0.1 * s.users_at(t), rel=1e-9, abs=1e-9)


def _load_text(text: str, name: str) -> scenarios.Scenario:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return load_scenario(_write(Path(d), name, text))


_SCALE_CASES = {
    "wave": _load_text(WAVE, "wave.yaml"),
    "rich": _load_text(RICH, "rich.yaml"),
    "league-saturday": load_scenario(CATALOGUE["league-saturday"]),
}


# ---------------------------------------------------------------- distributions


@pytest.mark.parametrize("dist, cv", [
    ("lognormal", 0.8), ("gamma", 1.5), ("gamma", 0.4), ("exponential", None), ("uniform", 0.5),
])
def test_dist_sample_moments(dist, cv):
    d = Dist.model_validate({"dist": dist, "mean": 4.0, **({"cv": cv} if cv is not None else {})})
    x = d.sample(np.random.default_rng(20240601), 200_000)
    assert x.shape == (200_000,) and (x >= 0).all()
    expected_cv = 1.0 if dist == "exponential" else cv
    assert d.coefficient_of_variation == expected_cv
    assert x.mean() == pytest.approx(4.0, rel=0.02)
    assert x.std() / x.mean() == pytest.approx(expected_cv, rel=0.02)
    assert d.second_moment == pytest.approx(16.0 * (1 + expected_cv**2))


def test_dist_constant_shorthand():
    d = Dist.model_validate(2.5)
    assert (d.dist, d.mean, d.coefficient_of_variation) == ("constant", 2.5, 0.0)
    assert d.second_moment == 2.5**2
    x = d.sample(np.random.default_rng(1), (3, 2))
    assert x.shape == (3, 2) and (x == 2.5).all()
    assert Dist.model_validate(7).mean == 7.0


def test_dist_constant_shorthand_in_a_scenario():
    s = load_scenario(CATALOGUE["league-saturday"])
    # built-in journeys write think times as {dist: exponential, mean: ...}
    assert s.traffic.journeys["browse"].steps[0].think_s == Dist(dist="exponential", mean=2.0)


@pytest.mark.parametrize("data, message", [
    ({"dist": "lognormal", "mean": 1}, "needs cv"),
    ({"dist": "gamma", "mean": 1}, "needs cv"),
    ({"dist": "exponential", "mean": 1, "cv": 0.5}, "exponential has cv 1"),
    ({"dist": "constant", "mean": 1, "cv": 0.2}, "constant has cv 0"),
    ({"dist": "uniform", "mean": 1, "cv": 0.7}, "uniform needs cv"),
    ({"dist": "weibull", "mean": 1, "cv": 0.7}, "Input should be"),
    ({"dist": "lognormal", "mean": -1, "cv": 0.5}, "greater than or equal to 0"),
    (True, "valid dictionary"),
])
def test_dist_rejects_inconsistent_parameters(data, message):
    with pytest.raises(ValueError, match=message):
        Dist.model_validate(data)


# ---------------------------------------------------------------- parse_threshold


@pytest.mark.parametrize("text, metric, op, limit, quantile, unit", [
    ("p(95)<150", "p", "<", 150.0, 95.0, "ms"),
    ("p(99.9) <= 2s", "p", "<=", 2000.0, 99.9, "ms"),
    ("p(50)<150ms", "p", "<", 150.0, 50.0, "ms"),
    ("med<=40", "med", "<=", 40.0, None, "ms"),
    ("avg<80", "avg", "<", 80.0, None, "ms"),
    ("max<2s", "max", "<", 2000.0, None, "ms"),
    ("min>1", "min", ">", 1.0, None, "ms"),
    ("error_rate<0.005", "error_rate", "<", 0.005, None, ""),
    ("error_rate<0.5%", "error_rate", "<", 0.005, None, ""),
    ("error_rate<1e-3", "error_rate", "<", 0.001, None, ""),
    ("recovery_time<120s", "recovery_time", "<", 120.0, None, "s"),
    ("recovery_time<120", "recovery_time", "<", 120.0, None, "s"),
    ("recovery_time<=500ms", "recovery_time", "<=", 0.5, None, "s"),
])
def test_parse_threshold(text, metric, op, limit, quantile, unit):
    th = parse_threshold(text)
    assert (th.metric, th.op, th.quantile, th.unit) == (metric, op, quantile, unit)
    assert th.limit == pytest.approx(limit)
    assert th.text == text.strip()


def test_threshold_holds_and_label():
    th = parse_threshold("p(95)<150")
    assert th.holds(149.9) and not th.holds(150.0)
    assert parse_threshold("p(95)<=150").holds(150.0)
    assert parse_threshold("min>=5").holds(5) and not parse_threshold("min>5").holds(5)
    assert th.label == "p(95)" and parse_threshold("error_rate<1%").label == "error_rate"


@pytest.mark.parametrize("text, message", [
    ("p95<150", "not a budget expression"),
    ("p(95)", "not a budget expression"),
    ("p(95)=150", "not a budget expression"),
    ("latency<150", "not a budget expression"),
    ("p(95)<150min", "not a budget expression"),
    ("", "not a budget expression"),
    ("p(95)<-5", "not a budget expression"),
    ("p(0)<150", "percentile 0 is outside"),
    ("p(101)<150", "percentile 101 is outside"),
    ("p(95)<15%", "a latency takes ms or s"),
    ("recovery_time<5%", "a recovery time takes s or ms"),
    ("error_rate<5ms", "error_rate is a fraction or a percentage"),
    ("error_rate<1s", "error_rate is a fraction or a percentage"),
    ("error_rate<2", "error_rate above 1"),
    ("error_rate<150%", "error_rate above 1"),
])
def test_parse_threshold_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_threshold(text)


# ---------------------------------------------------------------- links

REFERENCE_PROFILES = {
    "devtools_3g": (400, 400, 2000),
    "devtools_slow_4g": (1440, 675, 562.5),
    "devtools_fast_4g": (8100, 1350, 165),
    "lighthouse_slow_4g": (1638.4, 675, 150),
    "lighthouse_regular_3g": (700, 630, 300),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_PROFILES))
def test_builtin_link_profiles_have_reference_constants(name):
    profile = Links(mix={"wifi": 1.0}).profiles[name]
    assert (profile.down_kbps, profile.up_kbps, profile.rtt_ms) == REFERENCE_PROFILES[name]
    assert profile.verified is True
    assert profile.source


def test_every_builtin_profile_says_where_it_comes_from():
    links = Links(mix={"wifi": 1.0})
    assert set(BUILTIN_PROFILES) <= set(links.profiles)
    for name, profile in links.profiles.items():
        assert isinstance(profile.source, str) and profile.source.strip(), name
        assert isinstance(profile.verified, bool), name
        if not profile.verified:
            assert "assumption" in profile.source or "approximate" in profile.source, name
    for raw in BUILTIN_PROFILES.values():
        assert "source" in raw and "verified" in raw


def test_scenario_profiles_extend_and_override_builtins():
    links = Links.model_validate({
        "mix": {"wifi": 0.5, "pitch_wifi": 0.5},
        "profiles": {
            "pitch_wifi": {"down_kbps": 5000, "up_kbps": 1000, "rtt_ms": 40,
                           "source": "assumption", "verified": False},
            "wifi": {"down_kbps": 100000, "up_kbps": 50000, "rtt_ms": 5,
                     "source": "assumption: fibre", "verified": False},
        },
    })
    assert links.profiles["pitch_wifi"].rtt_ms == 40
    assert links.profiles["wifi"].down_kbps == 100000
    assert links.profiles["devtools_3g"].rtt_ms == 2000
    with pytest.raises(ValueError, match="source"):
        Links.model_validate({"mix": {"x": 1.0}, "profiles": {
            "x": {"down_kbps": 1, "up_kbps": 1, "rtt_ms": 1, "verified": False}}})


def test_link_apply_overrides():
    from scenarios.links import LinkOverrides

    links = Links(mix={"wifi": 1.0})
    worse = links.apply("devtools_fast_4g", LinkOverrides(rtt_ms=900, loss=0.05))
    assert (worse.rtt_ms, worse.loss, worse.down_kbps) == (900, 0.05, 8100)
    assert links.profiles["devtools_fast_4g"].rtt_ms == 165


# ---------------------------------------------------------------- extends


CHILD = f"""\
extends: {BASE}
name: child
duration: 3600
traffic:
  peak_users: 1000
  wave:
    - {{at: 0, users: 0.5}}
    - {{at: 1800, users: 1.0}}
  journeys: {{browse: 0.6, bettor: 0.4}}
topology:
  services:
    bets:
      instances: 7
links:
  mix: {{wifi: 0.25, devtools_3g: 0.75}}
"""


def test_extends_overrides_a_nested_key_and_keeps_siblings(tmp_path: Path):
    import yaml

    base = yaml.safe_load(BASE.read_text())
    s = load_scenario(_write(tmp_path, "child.yaml", CHILD))
    bets = s.topology.services["bets"]
    assert base["topology"]["services"]["bets"]["instances"] != 7
    assert bets.instances == 7                         # the child's value
    base_bets = base["topology"]["services"]["bets"]
    assert bets.concurrency == base_bets["concurrency"]          # siblings from the base
    assert bets.service_time_ms.mean == base_bets["service_time_ms"]["mean"]
    assert s.topology.services["gateway"].instances == base["topology"]["services"]["gateway"]["instances"]
    assert set(s.topology.services) == set(base["topology"]["services"])
    assert "place_bet" in s.topology.steps and "main" in s.topology.databases
    assert s.autoscaling["odds"].max == base["autoscaling"]["odds"]["max"]


def test_extends_replaces_link_mix_whole(tmp_path: Path):
    s = load_scenario(_write(tmp_path, "child.yaml", CHILD))
    assert s.links.mix == {"wifi": 0.25, "devtools_3g": 0.75}


def test_extends_replaces_journeys_whole(tmp_path: Path):
    _write(tmp_path, "mid.yaml", CHILD.replace("name: child\n", ""))
    s = load_scenario(_write(tmp_path, "leaf.yaml",
                             "extends: mid.yaml\nname: leaf\ntraffic:\n  journeys: {cashout: 1}\n"))
    assert list(s.traffic.journeys) == ["cashout"]
    assert s.traffic.peak_users == 1000 and s.topology.services["bets"].instances == 7


def test_extends_chain_resolves_relative_paths(tmp_path: Path):
    sub = tmp_path / "sub"
    sub.mkdir()
    _write(sub, "mid.yaml", CHILD.replace("name: child\n", "").replace("instances: 7", "instances: 9"))
    s = load_scenario(_write(tmp_path, "top.yaml", "extends: sub/mid.yaml\nname: top\n"))
    assert s.name == "top" and s.topology.services["bets"].instances == 9


def test_error_in_the_child_points_into_the_child(tmp_path: Path):
    child = _write(tmp_path, "child.yaml", CHILD.replace("instances: 7", "concurrency: 0"))
    with pytest.raises(InputError) as info:
        load_scenario(child)
    (problem,) = info.value.problems
    assert Path(problem.file).resolve() == child.resolve()
    assert (problem.line, problem.field) == (13, "topology.services.bets.concurrency")
    assert "greater than or equal to 1" in problem.message


def test_error_in_the_base_points_into_the_base(tmp_path: Path):
    base = _write(tmp_path, "base.yaml", f"""\
extends: {BASE}
# a base with two mistakes, one of shape and one of reference
topology:
  services:
    wallet:
      concurrency: 0
""")
    child = _write(tmp_path, "child.yaml", CHILD.replace(f"extends: {BASE}", "extends: base.yaml"))
    with pytest.raises(InputError) as info:
        load_scenario(child)
    (problem,) = info.value.problems
    assert Path(problem.file).resolve() == base.resolve()
    assert (problem.line, problem.field) == (6, "topology.services.wallet.concurrency")

    _write(tmp_path, "base.yaml", f"""\
extends: {BASE}
autoscaling:
  payment: {{target: 0.5, max: 4}}
""")
    with pytest.raises(InputError) as info:
        load_scenario(child)
    (problem,) = info.value.problems
    assert Path(problem.file).resolve() == base.resolve()
    assert (problem.line, problem.field) == (3, "autoscaling.payment")
    assert "unknown service 'payment'" in problem.message


def test_merged_mapping_error_lines_follow_the_file_that_wrote_the_key(tmp_path: Path):
    # cost.classes.compute is merged key by key: the child's bad value is reported in the child
    child = _write(tmp_path, "child.yaml", CHILD.replace(
        "links:\n", "cost:\n  classes:\n    compute: {on_demand: -1}\nlinks:\n"))
    with pytest.raises(InputError) as info:
        load_scenario(child)
    problems = info.value.problems
    assert [(p.line, p.field) for p in problems] == [(16, "cost.classes.compute.on_demand")]
    assert Path(problems[0].file).resolve() == child.resolve()

    # a mistake in a base mapping the child also changes stays at the base's line
    text = BASE.read_text(encoding="utf-8")
    marker = "    kyc:                          # identity"
    assert marker in text
    line = next(i for i, l in enumerate(text.splitlines(), 1) if l.startswith(marker))
    base_copy = _write(tmp_path, "copy.yaml", text.replace(marker, marker + "\n      replicas: 2"))
    child2 = _write(tmp_path, "child2.yaml", CHILD.replace(
        f"extends: {BASE}", "extends: copy.yaml").replace("    bets:\n", "    kyc:\n"))
    with pytest.raises(InputError) as info:
        load_scenario(child2)
    (problem,) = info.value.problems
    assert Path(problem.file).resolve() == base_copy.resolve()
    assert (problem.line, problem.field) == (line + 1, "topology.services.kyc.replicas")
    assert problem.message == "unknown key"
