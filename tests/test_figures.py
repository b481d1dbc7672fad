"""What the figures say beside their pictures: the Fréchet figure's sample counts."""

from __future__ import annotations

from a3cli.engine.figures import sample_counts


def test_frechet_sample_counts_name_both_counts_only_when_they_differ():
    assert sample_counts(1000, 5000) == "each point: 1,000 generated images; the final report measures 5,000"
    assert sample_counts(500, 500) == "each point and the final report: 500 generated images"
