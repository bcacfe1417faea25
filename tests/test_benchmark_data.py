"""The data benchmark command, run at toy size: it prepares, loads and augments what it says."""

import json

from benchmarks import data as benchmark


def test_benchmark_reports_json(capsys):
    benchmark.main(["--num_images", "70", "--batch_size", "8", "--image_size", "32", "--steps", "1"])
    out = capsys.readouterr().out  # TFDS prints its own progress lines before the JSON
    result = json.loads(out[out.index("\n{") + 1:])
    assert result["prepared_images"] == 70
    assert result["train_images"] == 49  # 56 official train (80%), less 10% per class for validation
    assert result["train_bytes"] == 49 * 100 * 100 * 3
    assert set(result["delivered_images_per_s"]) == {"device", "host", "stream"}
    assert all(v > 0 for v in result["delivered_images_per_s"].values())
    assert result["augment_images_per_s"] > 0 and result["prepare_s"] > 0 and result["load_train_s"] > 0


def test_affectnet_benchmark_projects_the_whole_database(capsys):
    benchmark.main(["--affectnet_images", "12"])
    out = capsys.readouterr().out
    result = json.loads(out[out.index("\n{") + 1:])
    assert result["prepared_images"] == 12 and result["mean_jpeg_kb"] > 10
    projected = result["prepare_s"] * 287651 / 12 / 60  # prepare_s is rounded to 0.01 s
    assert abs(result["projected_prepare_min_for_287651"] - projected) <= 0.05 + 0.005 * 287651 / 12 / 60
    assert result["projected_prepare_cpu_min_for_287651"] > 0 and result["fingerprint_only_s"] > 0
