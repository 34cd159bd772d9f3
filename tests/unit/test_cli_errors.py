"""Bad input gives one clear line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from mlperf_bert.cli import main


def _run(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return rc, err.splitlines()[-1] if err else err  # progress bars may come before the error line


@pytest.fixture
def data(tiny_squad):
    """--dataset and --vocab of the tiny SQuAD file (the CLI reads them before the model and most flags)."""
    dataset, vocab = tiny_squad
    return ["--dataset", str(dataset), "--vocab", str(vocab)]


@pytest.fixture
def model(tiny_onnx):
    """--model: the tiny ONNX export (the CLI checks the model before the other backend flags)."""
    return ["--model", str(tiny_onnx)]


def test_missing_model(tmp_path, capsys, data):
    rc, err = _run(["run", "--model", str(tmp_path / "nope.onnx"), "--cache-dir", str(tmp_path), *data], capsys)
    assert rc == 2
    assert err == f"mlperf-bert run: error: model not found: {tmp_path / 'nope.onnx'}"


def test_unknown_scenario(capsys):
    rc, err = _run(["run", "--scenario", "Ofline"], capsys)
    assert rc == 2
    assert err.endswith("unknown scenario 'Ofline'; choose one of: Offline, Server, SingleStream, MultiStream")
    assert "\n" not in err


def test_unknown_backend(capsys):
    rc, err = _run(["run", "--backend", "tensorrt"], capsys)
    assert rc == 2 and "unknown backend 'tensorrt'" in err and "\n" not in err


def test_wrong_vocab(tmp_path, capsys, tiny_onnx, tiny_squad):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("hello\nworld\n")
    rc, err = _run(["run", "--model", str(tiny_onnx), "--dataset", str(tiny_squad[0]), "--vocab", str(vocab),
                    "--cache-dir", str(tmp_path), "--mode", "accuracy", "--max-examples", "5",
                    "--output-dir", str(tmp_path)], capsys)
    assert rc == 2 and str(vocab) in err and "\n" not in err


def test_non_squad_json(tmp_path, capsys, tiny_onnx, tiny_squad):
    ds = tmp_path / "data.json"
    ds.write_text('{"version": "1.1", "rows": [1, 2, 3]}')
    rc, err = _run(["run", "--model", str(tiny_onnx), "--dataset", str(ds), "--vocab", str(tiny_squad[1]),
                    "--cache-dir", str(tmp_path), "--output-dir", str(tmp_path)], capsys)
    assert rc == 2 and str(ds) in err and "\n" not in err


def test_missing_dataset(tmp_path, capsys):
    rc, err = _run(["run", "--dataset", str(tmp_path / "dev.json")], capsys)
    assert rc == 2
    assert "SQuAD dataset not found" in err and "--dataset" in err


def test_truncated_accuracy_log(tmp_path, capsys, data):
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text('[\n{"seq_id": 0, "qsl_idx": 0, "data": "0000')
    rc, err = _run(["accuracy", "--log-file", str(log), "--cache-dir", str(tmp_path), *data], capsys)
    assert rc == 2 and str(log) in err and "\n" not in err


def test_empty_accuracy_log(tmp_path, capsys, data):
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text("[]\n")
    rc, err = _run(["accuracy", "--log-file", str(log), "--cache-dir", str(tmp_path), *data], capsys)
    assert rc == 2 and "no samples" in err


def test_bad_flag_value_is_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--rules", "v2"])
    assert e.value.code == 2


def test_corrupt_onnx_with_the_transformer_optimizer(tmp_path, capsys, data):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07garbage, not a protobuf" * 10)
    rc, err = _run(["run", "--model", str(bad), "--cache-dir", str(tmp_path), "--output-dir", str(tmp_path),
                    "--mode", "accuracy", "--max-examples", "2", *data], capsys)
    assert rc == 2 and f"cannot load {bad}" in err and "not an ONNX model" in err


def test_report_of_a_file(tmp_path, capsys):
    f = tmp_path / "x.txt"
    f.write_text("hi")
    rc, err = _run(["report", str(f)], capsys)
    assert rc == 2 and err.endswith(f"{f} is not a run folder (no run.json)")


@pytest.mark.parametrize("flag,value,message", [
    ("--output-dir", "FILE", "is a file, not a folder"),
    ("--run-name", "../escape", "--run-name must be a plain folder name"),
])
def test_bad_output_location(tmp_path, capsys, data, model, flag, value, message):
    f = tmp_path / "file.txt"
    f.write_text("x")
    rc, err = _run(["run", flag, str(f) if value == "FILE" else value, *data, *model], capsys)
    assert rc == 2 and message in err


def test_find_peak_confirm_queries_below_early_stopping_floor(capsys, data, model):
    rc, err = _run(["find-peak", "--scenario", "Server", "--confirm-queries", "100", *data, *model], capsys)
    assert rc == 2 and err.endswith("--confirm-queries must be >= 459 (LoadGen's early stopping needs that many "
                                    "Server queries even with none late), got 100")


@pytest.mark.parametrize("flag", [["--rules", "quick"], ["--target-qps", "5"], ["--min-query-count", "10"],
                                  ["--no-probe"], ["--trace"]])
def test_find_peak_does_not_accept_flags_it_would_ignore(flag, capsys):
    """find-peak sets each run's rules and length itself; the run flags that set them are not offered."""
    with pytest.raises(SystemExit) as e:
        main(["find-peak", "--scenario", "Server", *flag])
    assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--threads", "0"], "--threads 0: must be >= 1 (leave it out for every physical core)"),
    (["--batch-size", "0"], "--batch-size 0: must be >= 1"),
    (["--token-budget", "-1"], "--token-budget -1: must be >= 0 (0 = no limit)"),
    (["--workers", "0"], "--workers 0: must be >= 1"),
    (["--target-qps", "0"], "--target-qps 0: must be > 0"),
    (["--null-delay-ms", "5"], "--null-delay-ms applies to backend null, not onnxruntime"),
    (["--backend", "null", "--null-delay-ms", "-1"], "--null-delay-ms -1: must be >= 0"),
    (["--backend", "pytorch", "--precision", "int4"], None),  # argparse: not among the choices
    (["--duration", "5"], "--duration sets the length of a --rules quick run; under --rules current the rules "
                          "set it (--min-duration overrides it, and the run is then not valid for a submission)"),
    (["--rules", "quick", "--min-duration", "0.5", "--max-duration", "0.2"],
     "--max-duration 0.2 is below --min-duration 0.5; LoadGen would stop the run before it is valid"),
])
def test_flag_errors_name_the_flag(argv, message, capsys, tmp_path, data, model):
    """Out-of-range flags: one line naming the flag (was: --threads 0 accepted and recorded as 0;
    --batch-size 0 named the internal field max_batch_size)."""
    if message is None:
        with pytest.raises(SystemExit) as e:
            main(["run", "--output-dir", str(tmp_path), *argv])
        assert e.value.code == 2
        return
    rc, err = _run(["run", "--output-dir", str(tmp_path), *argv, *data, *model], capsys)
    assert rc == 2 and err == f"mlperf-bert run: error: {message}"


def test_a_sizing_flag_of_another_scenario_is_named(tmp_path, capsys):
    """Was: --expected-latency-ms on Offline accepted without a word."""
    from mlperf_bert.cli import build_parser
    from mlperf_bert.commands.run import check_run_flags

    check_run_flags(build_parser().parse_args(["run", "--expected-latency-ms", "50"]))
    check_run_flags(build_parser().parse_args(["run", "--scenario", "SingleStream", "--target-qps", "5"]))
    assert capsys.readouterr().out.splitlines() == [
        "mlperf-bert: note: --expected-latency-ms sizes SingleStream/MultiStream runs; this Offline run does not use it",
        "mlperf-bert: note: --target-qps sizes Offline/Server runs; this SingleStream run does not use it"]


def test_dataset_or_vocab_folder_is_one_line(tmp_path, capsys, data, model):
    rc, err = _run(["run", "--output-dir", str(tmp_path / "runs"), *data, *model, "--dataset", str(tmp_path)], capsys)
    assert rc == 2 and err == (f"mlperf-bert run: error: --dataset {tmp_path} is a folder; pass the SQuAD v1.1 "
                               "JSON file (dev-v1.1.json)")
    rc, err = _run(["run", "--output-dir", str(tmp_path / "runs"), *data, *model, "--vocab", str(tmp_path)], capsys)
    assert rc == 2 and err == f"mlperf-bert run: error: --vocab {tmp_path} is a folder; pass the BERT uncased vocab.txt file"


def test_subset_run_is_labelled_and_not_judged(tmp_path, capsys):
    """A 40-question dataset with a target: the summary says it is a subset and does not judge the target
    (was: 'F1 >= 78.123 ... met' for a --max-examples 50 run)."""
    from fakes import write_tiny_squad

    dataset, vocab = write_tiny_squad(tmp_path / "data", repeat=40)
    rc = main(["run", "--backend", "null", "--dataset", str(dataset), "--vocab", str(vocab), "--mode", "accuracy",
               "--reference-f1", "1", "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "runs"),
               "--no-progress"])
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())  # the table wraps long lines
    assert rc == 0
    assert "over all 40 questions of the dataset: a subset, not SQuAD v1.1 dev" in out
    assert "not judged: this run scored 40 questions, not all of dev" in out
    assert " met" not in out.replace("not judged", "")


def test_check_on_a_folder_that_is_not_a_tree_is_one_line(tmp_path, capsys):
    """Was: a FAIL line, an empty table and exit 1, as if a tree had failed."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")
    rc, err = _run(["check", str(tmp_path / "run")], capsys)
    assert rc == 2 and err == (f"mlperf-bert check: error: {tmp_path / 'run'} is not a submission tree (no closed/ "
                               "or open/ folder): a run folder; make a tree from runs with 'mlperf-bert submission "
                               "--run ...'")
    rc, err = _run(["check", str(tmp_path / "nope")], capsys)
    assert rc == 2 and err == f"mlperf-bert check: error: submission folder not found: {tmp_path / 'nope'}"
