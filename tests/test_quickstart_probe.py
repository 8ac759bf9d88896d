import json

from harvester.commands.quickstart_probe import ProbeSummary, plain_reading
from pretrain.knn import KnnResult
from pretrain.probe import ProbeReport, StageResult


def _report(path, stages):
    """A report file as `harvest probe --out` writes it."""
    report = ProbeReport(checkpoint="run", arch="resnet18", width=8, size=16, data="probe.npz", train_images=10,
                         test_images=10, classes=2, bn_recalibrated=False)
    report.stages = [StageResult(k + 1, 8, 1e-3, val, test, KnnResult(20, 0.07, knn))
                     for k, (val, test, knn) in enumerate(stages)]
    path.write_text(json.dumps(report.to_json()))
    return path


def test_the_summary_takes_the_stage_the_held_out_images_chose_and_the_last_one(tmp_path):
    summary = ProbeSummary.read(_report(tmp_path / "p.json", [(0.30, 0.31, 0.20), (0.40, 0.38, 0.33), (0.35, 0.36, 0.30)]))
    assert summary == ProbeSummary(best_stage=2, best_linear=0.38, last_linear=0.36, best_knn=0.33)


def test_the_reading_follows_the_numbers(tmp_path):
    random_init = ProbeSummary(1, 0.40, 0.33, 0.30)
    assert "beats random init at the best stage by 5.0 points" in plain_reading(ProbeSummary(2, 0.45, 0.40, 0.35), random_init)
    level = plain_reading(ProbeSummary(1, 0.41, 0.39, 0.31), random_init)
    assert "level with random init (+1.0 points, within noise)" in level and "last stage the difference is +6.0" in level
    assert "below random init (-5.0 points)" in plain_reading(ProbeSummary(1, 0.35, 0.30, 0.25), random_init)
