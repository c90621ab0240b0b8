"""The Train panel's plots: finite, non-empty ranges and readable ticks for any points (none, one,
constant, NaN/inf, non-positive on a log scale), and the widget draws them without error."""

import math

import pytest

from ganeditor.qt.plot_axes import layout, transform

NAN, INF = float("nan"), float("inf")
CASES = {
    "one point": [(1.0, 0.6931)],
    "one point at zero": [(7.0, 0.0)],
    "constant": [(s, 0.5) for s in range(1, 6)],
    "one step, several values": [(3.0, 0.2), (3.0, 1.7)],
    "NaN and inf among finite values": [(1.0, NAN), (2.0, 0.4), (3.0, INF), (4.0, 0.3), (5.0, -INF)],
    "narrow": [(s, 0.6931 + 1e-5 * s) for s in range(1, 5)],
    "whole float range": [(1.0, -1e308), (2.0, 1e308)],
    "tiny values": [(1.0, 1e-9), (2.0, 3e-9)],
}


def _check(axes, log=False):
    assert all(math.isfinite(v) for v in (axes.x0, axes.x1, axes.y0, axes.y1))
    assert axes.x0 < axes.x1 and axes.y0 < axes.y1
    assert len(axes.yticks) >= 2 and axes.xticks
    labels = [t for _v, t in axes.yticks]
    assert len(set(labels)) == len(labels), labels  # ticks that read the same would lie
    assert all(axes.y0 <= v <= axes.y1 for v, _t in axes.yticks)
    assert all(axes.x0 <= v <= axes.x1 for v, _t in axes.xticks)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("log", [False, True])
def test_ranges_are_finite_and_non_empty(case, log):
    pts = CASES[case]
    axes = layout(pts, log)
    drawable = [y for _x, y in pts if math.isfinite(y) and (y > 0 or not log)]
    if not drawable:
        assert axes is None
        return
    _check(axes, log)
    t = [transform(y, log) for y in drawable]  # log10 on a log scale; clipped to +-1e300
    assert axes.y0 < min(t) and max(t) < axes.y1  # headroom: no point sits on the frame


@pytest.mark.parametrize("most", [3, 5])
@pytest.mark.parametrize("log", [False, True])
def test_a_short_plot_gets_few_ticks(most, log):
    for pts in [*CASES.values(), [(1.0, 139.0), (12.0, 240.0)], [(1.0, 12.0), (9.0, 340.0)], [(1.0, 1e-9), (3.0, 2e3)]]:
        axes = layout(pts, log, most)
        assert axes is None or 2 <= len(axes.yticks) <= most, (pts, axes.yticks)


def test_a_lone_point_is_centred_under_its_step_label():
    axes = layout([(500.0, 123.4)], log=True)
    assert axes.x0 < 500 < axes.x1 and math.isclose((axes.x0 + axes.x1) / 2, 500)
    assert axes.xticks == [(500.0, "step 500")]
    assert math.isclose((axes.y0 + axes.y1) / 2, math.log10(123.4))


def test_nothing_drawable_gives_no_axes():
    assert layout([]) is None
    assert layout([(1.0, NAN), (2.0, INF)]) is None
    assert layout([(1.0, 0.0), (2.0, -3.0)], log=True) is None


def test_narrow_ranges_get_enough_decimals():
    labels = [t for _v, t in layout([(1.0, 0.69312), (2.0, 0.69318)]).yticks]
    assert all(t.startswith("0.6931") for t in labels) and len(labels) >= 3


@pytest.mark.parametrize("log", [False, True])
def test_widget_draws_none_one_constant_and_nan_points(qtbot, log):
    from ganeditor.qt.loss_plot import LossPlot

    plot = LossPlot()
    plot.log_scale = log
    qtbot.addWidget(plot)
    plot.resize(420, 200)
    assert plot.axes() is None and not plot.grab().isNull()
    plot.add(1, {"G": NAN, "D": INF})
    assert plot.axes() is None and not plot.grab().isNull()  # only NaN: the legend says so
    assert plot.legend_text("G") == "G — (1 NaN/inf skipped)"
    plot.add(2, {"G": 0.5, "D": 0.5, "kid": -0.2})
    _check(plot.axes())
    assert not plot.grab().isNull()
    for step in range(3, 6):
        plot.add(step, {"G": 0.5, "D": NAN, "kid": 0.1})
    _check(plot.axes())
    assert not plot.grab().isNull()
    assert plot.legend_text("D") == "D 0.5 (4 NaN/inf skipped)"
    assert plot.legend_text("kid") == ("kid 0.1 (1 ≤ 0 not shown)" if log else "kid 0.1")
    assert [p for p in plot.series["G"]] == [(2.0, 0.5), (3.0, 0.5), (4.0, 0.5), (5.0, 0.5)]
