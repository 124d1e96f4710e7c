"""Figures: point labels in the budget figure (kept apart; hand-worked boxes) and the panel layout."""

from xlt_utils.plots import label_offsets


def _boxes(xy, widths, height, offsets):
    return [(x + dx, y + dy, x + dx + w, y + dy + height) for (x, y), w, (dx, dy) in zip(xy, widths, offsets)]


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_far_apart_points_keep_the_default_slot():
    assert label_offsets([(0, 0), (100, 100)], [20, 20], 8.4) == [(3.0, 3.0), (3.0, 3.0)]


def test_a_second_label_at_the_same_point_goes_below():
    # First label: box (3, 3)-(23, 11.4). Second, same point: (3, 3) collides, (3, -11) gives (3, -11)-(23, -2.6),
    # which clears the first by 5.6 points.
    assert label_offsets([(0, 0), (0, 0)], [20, 20], 8.4) == [(3.0, 3.0), (3.0, -11.0)]


def test_the_rq3_case_two_points_close_together_with_long_labels():
    # "full" and "32 tokens" 3 points apart in x and 1 in y (the MNLI pair in the embedded rq3 figure): the
    # right-hand label must not be drawn over the left-hand one.
    xy = [(400.0, 200.0), (403.0, 201.0)]
    widths = [0.6 * 7 * len("full"), 0.6 * 7 * len("32 tokens")]
    offsets = label_offsets(xy, widths, 8.4)
    a, b = _boxes(xy, widths, 8.4, offsets)
    assert not _overlap(a, b)
    assert offsets[0] == (3.0, 3.0)


def test_a_crowd_of_labels_never_overlaps_while_slots_remain():
    xy = [(0.0, 0.0), (1.0, 0.0), (2.0, 1.0), (0.0, 2.0)]
    widths = [30.0, 30.0, 30.0, 30.0]
    offsets = label_offsets(xy, widths, 8.4)
    boxes = _boxes(xy, widths, 8.4, offsets)
    assert all(not _overlap(boxes[i], boxes[j]) for i in range(4) for j in range(i + 1, 4))
    assert len(set(offsets)) == 4


def test_panels_wrap_at_four_per_row_with_extra_rows_below():
    """The real study has up to 11 targets: 11 panels are 3 rows of 4 (one cell hidden), plus a cost row."""
    import matplotlib.pyplot as plt

    from xlt_utils.plots import panel_axes

    fig, panels, below = panel_axes(11, 4.0, 3.0, extra_rows=1)
    try:
        assert len(panels) == 11 and len(below) == 1 and len(below[0]) == 4
        assert tuple(fig.get_size_inches()) == (16.0, 12.0)  # 4 columns x (3 panel rows + 1 extra row)
        hidden = [ax for ax in fig.axes if not ax.axison]
        assert len(hidden) == 1 and hidden[0] not in panels
    finally:
        plt.close(fig)
    fig, panels, below = panel_axes(2, 4.0, 3.0)
    try:
        assert len(panels) == 2 and below == [] and tuple(fig.get_size_inches()) == (8.0, 3.0)
    finally:
        plt.close(fig)


def test_source_figure_draws_a_row_per_target(tmp_path, monkeypatch):
    """rq5's figure showed only the first target (POS-like) and hid the NLI-like matrix; each target gets a row."""
    import matplotlib.image as mpimg
    import pandas as pd

    from xlt_utils import plots

    monkeypatch.setattr(plots, "figure_dir", lambda config: tmp_path)
    per = pd.DataFrame([{"intermediate_train_language": src, "target_task": t, "lang": lang, "value": v,
                         "delta": v - 50.0, "distance_from_source": d}
                        for t in ("synth_udpos", "synth_xnli") for src in ("en", "sw3")
                        for lang, v, d in (("en", 80.0, 0.0), ("sw3", 60.0, 0.3))])
    matrix = per.pivot_table(index="intermediate_train_language", columns=["target_task", "lang"], values="delta")
    two = mpimg.imread(plots.source_figure(matrix, per, None, "d_syn", name="two.png"))
    one = mpimg.imread(plots.source_figure(matrix[["synth_xnli"]], per[per["target_task"] == "synth_xnli"], None,
                                           "d_syn", name="one.png"))
    assert two.shape[0] == 2 * one.shape[0] and two.shape[1] == one.shape[1]
