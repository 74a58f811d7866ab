from sklegc import demo
from sklegc.__main__ import main


def test_demo_command_prints_one_row_per_model(monkeypatch, capsys):
    tiny = dict(demo.DEMOS["iris"])
    tiny["params"] = dict(hidden_layer_sizes=(4,), lr=0.5, max_epochs=4, batch_size=1,
                          window_size=20, trace_fraction=0.5, target_accuracy=0.8,
                          loss="cross_entropy")
    monkeypatch.setitem(demo.DEMOS, "iris", tiny)
    assert main(["demo", "--dataset", "iris"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line) == {"-"})
    table = lines[rule + 1:]
    models = [line.split()[0] for line in table[:6]]
    assert models == ["MLPClassifier()", "LEGCPrunedClassifier()", "dense", "LEGCNet-FT",
                      "LEGCNet-FT+Bonf", "LEGCNet-PT"]
    for line in table[:6]:
        accuracy = float(line.split()[1])
        assert 0.5 <= accuracy <= 1.0
    # MLPClassifier's 100 hidden units on iris: 4*100 + 100*3 weights, none pruned
    assert table[0].split()[3:5] == ["700", "0.0000"]
    # the dense network keeps all 4*4 + 4*3 weights
    assert table[2].split()[3] == "28"
