"""Data-parallel fits on two processes (gloo, file rendezvous) against one process.

One spawn of two processes runs every distributed fit (module fixture); each
process writes what it computed, and the tests compare that with the same fit
in this process.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import sparse

from skvdae import DiffusionMapEmbedder, VDAESampler, load_model
from skvdae.datasets import loop_distance, make_loop
from skvdae.distributed import (
    Communicator,
    process_group_active,
    shard_bounds,
    single_process,
)
from skvdae.graph import NeighborIndex, build_diffusion_graph

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)

WORLD_SIZE = 2


def graph_data():
    """A noisy loop, a far pair of points (outliers) and a separate blob."""
    rng = np.random.RandomState(0)
    X, _ = make_loop(1500, noise=0.01, random_state=rng)
    blob = 3.0 + 0.05 * rng.standard_normal((40, 3))
    return np.r_[X, [[5.0, 5.0, 5.0], [5.0, 5.0, 5.01]], blob]


def wide_data():
    """The loop in 20 dimensions: exact radius queries, not the KD-tree path."""
    rng = np.random.RandomState(2)
    frame = np.linalg.qr(rng.standard_normal((20, 3)))[0]
    return make_loop(600, noise=0.01, random_state=rng)[0] @ frame.T


def loop_data():
    return make_loop(1200, noise=0.01, random_state=1)[0]


def embedder(**params):
    return DiffusionMapEmbedder(
        n_components=2, max_iter=300, device="cpu", random_state=0, **params
    )


def sampler():
    return VDAESampler(embedder=embedder(), max_iter=300, device="cpu", random_state=0)


def _worker(rank, world_size, rendezvous, folder):
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size
    )
    out = {"active": process_group_active()}
    communicator = Communicator.current()
    out["gathered"] = communicator.allgather(np.arange(rank + 1) + 10 * rank)

    X = graph_data()
    graph = build_diffusion_graph(
        NeighborIndex().fit(X), 10, "auto", 1.0, 4096, communicator=communicator
    )
    out["graph"] = {
        "rows": graph.affinity,
        "row_start": graph.row_start,
        "degrees": graph.degrees,
        "labels": graph.component_labels,
        "inliers": graph.inliers,
        "bandwidth": graph.bandwidth,
        "log_q": graph.log_kernel_density,
    }

    with pytest.warns(UserWarning, match="far below"):
        tiny = build_diffusion_graph(
            NeighborIndex().fit(X), 10, 1e-9, 1.0, communicator=communicator
        )
    out["tiny_graph"] = (tiny.affinity, tiny.row_start)

    wide = wide_data()
    graph = build_diffusion_graph(
        NeighborIndex().fit(wide), 10, "auto", 1.0, 4096, communicator=communicator
    )
    out["wide_graph"] = graph.affinity

    X = loop_data()
    first = embedder().fit(X)
    second = embedder().fit(X)
    out["embedding"] = first.transform(X)
    out["embedding_again"] = second.transform(X)
    out["eigenvalues"] = first.eigenvalues_
    out["world_size"] = first.world_size_
    out["auto"] = DiffusionMapEmbedder(max_iter=50, random_state=0).fit(X).n_components_
    try:
        DiffusionMapEmbedder(solver="exact").fit(X)
    except ValueError as error:
        out["exact_error"] = str(error)

    if rank == 0:  # the other process does not take part
        with single_process():
            out["alone"] = embedder(solver="exact").fit(X[:300]).world_size_

    fitted = sampler().fit(X)
    out["samples"] = fitted.sample(400, n_steps=5, random_state=0)
    out["sampler_world_size"] = fitted.world_size_
    with open(os.path.join(folder, f"rank{rank}.pkl"), "wb") as handle:
        pickle.dump(out, handle)
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    torch.multiprocessing.spawn(
        _worker,
        args=(WORLD_SIZE, str(folder / "rendezvous"), str(folder)),
        nprocs=WORLD_SIZE,
    )
    results = []
    for rank in range(WORLD_SIZE):
        with open(folder / f"rank{rank}.pkl", "rb") as handle:
            results.append(pickle.load(handle))
    return results


def test_shard_bounds_cover_the_rows():
    bounds = shard_bounds(11, 3)
    assert bounds == [(0, 4), (4, 8), (8, 11)]
    assert shard_bounds(1, 2) == [(0, 1), (1, 1)]


def test_no_group_is_single_process():
    assert Communicator.current() is None
    assert not process_group_active()
    assert (
        DiffusionMapEmbedder(solver="exact", n_components=2)
        .fit(loop_data()[:300])
        .world_size_
        == 1
    )


def test_collectives(distributed_results):
    for result in distributed_results:
        assert result["active"]
        np.testing.assert_array_equal(result["gathered"], [0, 10, 11])


def test_sharded_graph_equals_the_single_process_graph(distributed_results):
    X = graph_data()
    graph = build_diffusion_graph(NeighborIndex().fit(X), 10, "auto", 1.0, 4096)
    assert graph.inliers.size == X.shape[0] - 2  # the far pair is left out
    assert graph.n_connected_components == 2
    shards = [result["graph"] for result in distributed_results]
    rows = sparse.vstack([shard["rows"] for shard in shards], format="csr")
    assert rows.shape == graph.affinity.shape
    np.testing.assert_array_equal(rows.indptr, graph.affinity.indptr)
    np.testing.assert_array_equal(rows.indices, graph.affinity.indices)
    np.testing.assert_array_equal(rows.data, graph.affinity.data)
    assert [shard["row_start"] for shard in shards] == [
        0,
        shards[0]["rows"].shape[0],
    ]
    for shard in shards:
        assert shard["bandwidth"] == graph.bandwidth
        np.testing.assert_array_equal(shard["degrees"], graph.degrees)
        np.testing.assert_array_equal(shard["labels"], graph.component_labels)
        np.testing.assert_array_equal(shard["inliers"], graph.inliers)
        np.testing.assert_array_equal(shard["log_q"], graph.log_kernel_density)


def test_sharded_graph_of_isolated_samples(distributed_results):
    # A bandwidth far below the neighbour distances: every sample is kept.
    X = graph_data()
    with pytest.warns(UserWarning, match="far below"):
        graph = build_diffusion_graph(NeighborIndex().fit(X), 10, 1e-9, 1.0)
    shards = [result["tiny_graph"] for result in distributed_results]
    assert [start for _, start in shards] == [0, shards[0][0].shape[0]]
    rows = sparse.vstack([rows for rows, _ in shards], format="csr")
    assert (rows != graph.affinity).nnz == 0


def test_sharded_graph_from_radius_queries(distributed_results):
    X = wide_data()
    graph = build_diffusion_graph(NeighborIndex().fit(X), 10, "auto", 1.0, 4096)
    rows = sparse.vstack(
        [result["wide_graph"] for result in distributed_results], format="csr"
    )
    # The same pairs; the distances are recomputed from coordinates, so the
    # weights agree to round-off.
    np.testing.assert_array_equal(rows.indptr, graph.affinity.indptr)
    np.testing.assert_array_equal(rows.indices, graph.affinity.indices)
    np.testing.assert_allclose(rows.data, graph.affinity.data, rtol=1e-10)


def _squared_chordal(a, b):
    qa, _ = np.linalg.qr(a - a.mean(axis=0))
    qb, _ = np.linalg.qr(b - b.mean(axis=0))
    return float(a.shape[1] - np.linalg.norm(qa.T @ qb) ** 2)


def test_distributed_embedding_matches_one_process(distributed_results):
    X = loop_data()
    single = embedder().fit(X)
    reference = single.transform(X)
    first, second = distributed_results
    assert first["world_size"] == 2 and single.world_size_ == 1
    # Every process ends with the same network, and the fit is repeatable.
    np.testing.assert_array_equal(first["embedding"], second["embedding"])
    np.testing.assert_array_equal(first["embedding"], first["embedding_again"])
    embedding = first["embedding"]
    # The leading pair is a degenerate eigenspace: compare the spans.
    assert _squared_chordal(embedding, reference) <= 0.01
    np.testing.assert_allclose(first["eigenvalues"], single.eigenvalues_, rtol=0.02)


def test_distributed_auto_n_components_and_exact_refusal(distributed_results):
    for result in distributed_results:
        assert result["auto"] == 2
        assert "solver='spectralnet'" in result["exact_error"]


def test_single_process_block_inside_a_group(distributed_results):
    assert distributed_results[0]["alone"] == 1


def test_distributed_vdae_samples_like_one_process(distributed_results):
    X = loop_data()
    single = sampler().fit(X).sample(400, n_steps=5, random_state=0)
    first, second = distributed_results
    assert first["sampler_world_size"] == 2
    np.testing.assert_array_equal(first["samples"], second["samples"])
    distributed_error = loop_distance(first["samples"]).mean()
    single_error = loop_distance(single).mean()
    assert distributed_error <= 1.2 * single_error


def test_torchrun_fit_writes_one_model(tmp_path):
    X = loop_data()[:600]
    np.save(tmp_path / "data.npy", X)
    out = tmp_path / "model.skvdae"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "skvdae",
        "fit",
        str(tmp_path / "data.npy"),
        "--out",
        str(out),
        "--model",
        "embedder",
        "--n-components",
        "2",
        "--max-iter",
        "50",
        "--random-state",
        "0",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    model = load_model(out)
    assert model.world_size_ == 2
    assert model.transform(X).shape == (600, 2)
