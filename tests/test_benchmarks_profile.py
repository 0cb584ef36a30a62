"""benchmarks/profile_step.py: attributing trace kernels to model parts through the HLO."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from profile_step import hlo_op_names, scope, summarize_trace  # noqa: E402

HLO = """
ENTRY %main {
  %input_reduce_select_fusion.4 = (bf16[32,256,256,64]{3,2,1,0}, f32[8192]{0}) fusion(%a, %b), kind=kInput, calls=%fused_reduce_select.4, metadata={op_name="jit(train_step)/transpose(jvp(block1_conv1))/select_n" scheduling_name="x"}
  %cudnn-conv.7 = bf16[2,8,8,4]{3,2,1,0} custom-call(%c, %d), custom_call_target="__cudnn$convForward", metadata={op_name="jit(train_step)/jvp(sketch_encoder)/block0_conv/conv_general_dilated"}
  ROOT %copy.3 = f32[4]{0} copy(%e)
}
"""


def test_hlo_op_names_keys_instructions_and_their_kernel_names():
    names = hlo_op_names(HLO)
    assert names["input_reduce_select_fusion.4"] == "jit(train_step)/transpose(jvp(block1_conv1))/select_n"
    assert names["input_reduce_select_fusion_4"] == names["input_reduce_select_fusion.4"]
    assert names["cudnn-conv.7"].endswith("block0_conv/conv_general_dilated")
    assert "copy.3" not in names  # no metadata


def test_scope_unwraps_transforms_and_skips_jitted_helpers():
    assert scope("jit(train_step)/transpose(jvp(sketch_encoder))/pool1/reduce_window_sum") == \
        "backward: sketch_encoder/pool1"
    assert scope("jit(train_step)/jvp(act2)/jit(leaky_relu)/mul") == "act2"
    assert scope("jit(train_step)/abs") == "(top level)"
    assert scope("jit(train_step)/jvp(residual0)/norm2/rsqrt", depth=1) == "residual0"


def test_summary_attributes_gpu_kernels_by_hlo_op_and_by_name():
    meta = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/device:GPU:0"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "Stream #13(compute)"}},
    ]
    kernels = [  # two steps; a cuDNN kernel names its HLO op in args, an XLA fusion is named after it
        {"ph": "X", "pid": 1, "tid": 2, "name": "sm90_xmma_fprop", "dur": 300.0, "args": {"hlo_op": "cudnn-conv.7"}},
        {"ph": "X", "pid": 1, "tid": 2, "name": "input_reduce_select_fusion_4", "dur": 100.0},
        {"ph": "X", "pid": 1, "tid": 2, "name": "memcpy128", "dur": 20.0},
    ] * 2
    summary = summarize_trace(meta + kernels, steps=2, op_names=hlo_op_names(HLO))
    assert summary["ms_per_step"] == 0.42
    assert summary["by_scope"] == {"sketch_encoder/block0_conv": 0.3, "backward: block1_conv1": 0.1,
                                   "(unattributed)": 0.02}
    assert summary["categories"]["convolution"] == 0.3
    assert summary["top"][0]["name"] == "sm90_xmma_fprop" and summary["top"][0]["calls_per_step"] == 1


FUSED_HLO = """
%fused_transpose.48 (param_0: f32[3,3,4,4], param_1: f32[4,3,3,4]) -> f32[3,3,4,4] {
  %param_0 = f32[3,3,4,4]{3,2,1,0} parameter(0)
  %convert.1 = f32[4,3,3,4]{3,2,1,0} convert(%param_1), metadata={op_name="jit(train_step)/transpose(jvp(residual3))/conv2/convert_element_type"}
  %sub.2 = f32[4,3,3,4]{3,2,1,0} subtract(%convert.1, %convert.1), metadata={op_name="jit(train_step)/adam/sub"}
  ROOT %add.3 = f32[4,3,3,4]{3,2,1,0} add(%sub.2, %sub.2), metadata={op_name="jit(train_step)/adam/add"}
}

ENTRY %main {
  %input_transpose_fusion.13 = f32[3,3,4,4]{3,2,1,0} fusion(%a, %b), kind=kInput, calls=%fused_transpose.48, metadata={scheduling_name="input_transpose_fusion.13"}
}
"""


def test_fusions_without_metadata_take_the_part_most_of_their_fused_ops_belong_to():
    names = hlo_op_names(FUSED_HLO)
    assert scope(names["input_transpose_fusion.13"]) == "adam"  # 2 adam ops vs 1 residual3 op
    assert scope(names["input_transpose_fusion_13"]) == "adam"


def test_kernels_inside_cuda_graphs_are_attributed_by_their_name():
    meta = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/device:GPU:0"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "Stream #13(compute)"}},
    ]
    kernels = [{"ph": "X", "pid": 1, "tid": 2, "name": "input_transpose_fusion_13", "dur": 50.0,
                "args": {"hlo_op": "command_buffer_7"}}]  # the graph's op, not the kernel's
    summary = summarize_trace(meta + kernels, steps=1, op_names=hlo_op_names(FUSED_HLO))
    assert summary["by_scope"] == {"adam": 0.05}
