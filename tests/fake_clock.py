"""A stand-in for the `time` module that slow fakes move on instead of sleeping, so budgets are judged without timing."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def fake_time_in_live_data(monkeypatch) -> FakeClock:
    """Live data's pool (pretrain/data.py) reads this clock instead of the real one, for the test's duration."""
    import pretrain.data

    clock = FakeClock()
    monkeypatch.setattr(pretrain.data, "time", clock)
    return clock
