"""Versions as TF Serving manages them: a base directory of numbered versions, polled; a new
one loaded and warmed before it takes traffic while clients keep asking (no request fails),
the old one retired; labels; a broken version reported while the last good one serves."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from tfpersist import serving
from tfpersist.running import loaders

from helpers import W1, W2, X
from helpers import two_layer as build


def call(url: str, body=None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data), timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def version(tf, base, number: int, scale: float) -> np.ndarray:
    """Version ``number`` written beside ``base`` and renamed in (atomic, as a deploy
    should); returns its probabilities for X."""
    staging = base.parent / f".staging-{number}"
    staging.mkdir()
    model = build(tf, staging / "model.pb", W1 * scale, W2)
    model_runs = loaders.open_model(staging / "model.pb")
    want = model_runs.run({"x": X})["probabilities"]
    model_runs.close()
    del model
    os.rename(staging, base / str(number))
    return want


def start(base, opener=loaders.open_model, **fields):
    options = serving.Options(name="m", port=0, poll_seconds=0.05, **fields)
    catalog = serving.catalog_for(base, opener, options, say=lambda line: None)
    return serving.start(catalog, options)


def states(url) -> dict[str, str]:
    return {s["version"]: s["state"] for s in call(url)[1]["model_version_status"]}


def test_a_new_version_takes_over_under_load_with_no_request_failing(tf, tmp_path):
    base = tmp_path / "m"
    base.mkdir()
    first = version(tf, base, 1, 1.0)
    running = start(base)
    url = f"http://127.0.0.1:{running.port}/v1/models/m"
    answers, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            code, body = call(f"{url}:predict", {"instances": X[:4].tolist()})
            answers.append((time.monotonic(), code, body))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for c in clients:
        c.start()
    try:
        time.sleep(0.3)
        second = version(tf, base, 2, 3.0)
        switched = None
        for _ in range(200):  # bounded: up to 20 s
            if states(url) == {"2": "AVAILABLE", "1": "END"}:
                switched = time.monotonic()
                break
            time.sleep(0.1)
        assert switched is not None, states(url)
        time.sleep(0.3)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=30)
        running.stop()
    assert answers and all(code == 200 for _, code, _ in answers), [
        a for a in answers if a[1] != 200
    ][:3]

    def which(body) -> int:
        got = np.array([p["probabilities"] for p in body["predictions"]])
        return (
            1
            if np.allclose(got, first[:4], atol=1e-6)
            else 2
            if np.allclose(got, second[:4], atol=1e-6)
            else 0
        )

    seen = [(t, which(body)) for t, _, body in answers]
    assert {v for _, v in seen} == {1, 2}  # both versions answered, nothing else did
    assert all(v == 2 for t, v in seen if t > switched + 0.05)


def test_labels_pin_an_older_version_and_unknown_ones_are_400(tf, tmp_path):
    base = tmp_path / "m"
    base.mkdir()
    first = version(tf, base, 1, 1.0)
    second = version(tf, base, 2, 2.0)
    running = start(base, labels=(("stable", 1),))
    url = f"http://127.0.0.1:{running.port}/v1/models/m"
    try:
        assert states(url) == {"2": "AVAILABLE", "1": "AVAILABLE"}
        body = {"instances": X[:2].tolist()}
        for where, want in [("/labels/stable", first), ("", second), ("/versions/1", first)]:
            code, answer = call(f"{url}{where}:predict", body)
            assert code == 200, answer
            got = [p["probabilities"] for p in answer["predictions"]]
            np.testing.assert_allclose(got, want[:2], atol=1e-6)
        code, answer = call(f"{url}/labels/canary:predict", body)
        assert code == 400 and "label: canary" in answer["error"]  # TF Serving's InvalidArgument
        assert call(f"{url}/versions/9:predict", body)[0] == 404
    finally:
        running.stop()


def test_a_broken_version_is_reported_and_the_last_good_one_serves(tf, tmp_path):
    base = tmp_path / "m"
    base.mkdir()
    first = version(tf, base, 1, 1.0)
    running = start(base)
    url = f"http://127.0.0.1:{running.port}/v1/models/m"
    try:
        broken = base.parent / ".broken"
        broken.mkdir()
        (broken / "model.pb").write_bytes(b"not a graph")
        os.rename(broken, base / "2")
        for _ in range(100):
            status = call(url)[1]["model_version_status"]
            if status[0]["state"] == "END":
                break
            time.sleep(0.05)
        assert status[0]["version"] == "2" and status[0]["state"] == "END", status
        assert status[0]["status"]["error_message"], status
        assert status[1] == {
            "version": "1",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
        code, answer = call(f"{url}:predict", {"instances": X[:1].tolist()})
        assert code == 200
        np.testing.assert_allclose(answer["predictions"][0]["probabilities"], first[0], atol=1e-6)
    finally:
        running.stop()


def test_no_version_begins_loading_once_the_drain_has_begun(tf, tmp_path):
    """The poller stops first: a version that appears while the drain still answers a request
    (queued 1 s for a batch) is never loaded, in many polls' time."""
    base = tmp_path / "m"
    base.mkdir()
    first = version(tf, base, 1, 1.0)
    opened, written = [], []

    def opener(path):
        opened.append(path.relative_to(base).parts[0])
        return loaders.open_model(path)

    running = start(base, opener, max_batch_size=1000, batch_timeout_micros=1_000_000)
    url = f"http://127.0.0.1:{running.port}/v1/models/m:predict"
    answered = []
    asking = threading.Thread(
        target=lambda: answered.append(call(url, {"instances": X[:2].tolist()}))
    )
    asking.start()
    try:
        deadline = time.monotonic() + 10
        while running.service.in_flight < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert running.service.in_flight == 1

        def refusing():  # the drain has begun: a new version arrives
            version(tf, base, 2, 3.0)
            written.append(time.monotonic())

        assert running.stop(10, refusing) == 0
        assert time.monotonic() - written[0] > 5 * 0.05  # polls it would have made since
        asking.join(10)
        code, answer = answered[0]
        assert code == 200, answer
        got = [p["probabilities"] for p in answer["predictions"]]
        np.testing.assert_allclose(got, first[:2], rtol=1e-5, atol=1e-6)
        assert opened == ["1"] and (base / "2").is_dir()
    finally:
        running.stop()


def test_a_base_directory_with_no_loadable_version_is_one_line(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "model.pb").write_bytes(b"junk")
    with pytest.raises(serving.TfpersistError, match=r"no version loads \(1: "):
        start(tmp_path / "m")
