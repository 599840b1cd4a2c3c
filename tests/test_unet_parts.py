"""The UNet's forward in consecutive parts (svd_batch.engine.unet_parts): the same computation as diffusers', cut
where the compile work balances, each part compiling to one graph."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNetSpatioTemporalConditionModel

from svd_batch.engine import unet_parts
from svd_batch.engine.artifacts import unet_graph_names
from svd_batch.engine.hardware import FastPaths
from svd_batch.engine.models import build_tiny_pipeline
from svd_batch.engine.unet_fast import install
from tests.conftest import tiny_unet_inputs


@pytest.fixture(scope="module")
def unet():
    unet = build_tiny_pipeline().unet.eval()
    install(unet, FastPaths(single_token_cross_attention=True, fused_qkv=True))
    return unet


@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_the_parts_one_after_the_other_are_the_unets_own_forward(unet, parts):
    args = tiny_unet_inputs()
    with torch.no_grad():
        expected = UNetSpatioTemporalConditionModel.forward(unet, *args, return_dict=False)[0]
        assert torch.equal(unet_parts.run_parts(unet, parts, *args), expected)
        # a later part's inputs are what the parts before it hand on
        inputs = unet_parts.inputs_of_part(unet, parts - 1, parts, *args)
        assert torch.equal(unet_parts.run_part(unet, parts - 1, parts, *inputs), expected)


def test_full_size_svd_is_cut_where_the_compile_work_balances():
    with torch.device("meta"):
        unet = UNetSpatioTemporalConditionModel(sample_size=96, num_frames=25)
    costs = unet_parts.stage_costs(unet)  # in, 4 down blocks, mid, 4 up blocks, out
    assert costs == [0.5, 7.0, 7.0, 7.0, 2.0, 4.5, 3.0, 10.5, 10.5, 10.5, 0.5]
    bounds = unet_parts.part_bounds(unet, 3)
    assert bounds == ((0, 4), (4, 8), (8, 11))  # down blocks 1-3 | down 4, mid, up 1-2 | up 3-4, out
    shares = [sum(costs[first:end]) / sum(costs) for first, end in bounds]
    assert max(shares) - min(shares) < 0.05
    for parts in (1, 2, 4):  # every stage in exactly one part, in order
        bounds = unet_parts.part_bounds(unet, parts)
        assert bounds[0][0] == 0 and bounds[-1][1] == len(costs)
        assert all(end == first for (_, end), (first, _) in zip(bounds, bounds[1:], strict=False))
        assert all(first < end for first, end in bounds)


def test_more_parts_than_stages_is_refused(unet):
    with pytest.raises(ValueError, match="cannot be cut into 8 parts"):
        unet_parts.part_bounds(unet, 8)


def test_part_names_round_trip():
    assert unet_graph_names(1) == ["unet"]
    assert unet_graph_names(3) == ["unet_part1of3", "unet_part2of3", "unet_part3of3"]
    assert [unet_parts.parse_part_name(name) for name in unet_graph_names(3)] == [(0, 3), (1, 3), (2, 3)]
    assert unet_parts.parse_part_name("unet") is None and unet_parts.parse_part_name("vae_decoder") is None


def test_each_part_compiles_to_one_graph(unet):
    args = tiny_unet_inputs()
    with torch.no_grad():
        expected = unet(*args, return_dict=False)[0]
        for index in range(3):
            torch._dynamo.reset()
            part = torch.compile(unet_parts.part_function(unet, index, 3), fullgraph=True, backend="eager")
            args = part(unet, *args)
    assert torch.allclose(args, expected, atol=1e-6)
