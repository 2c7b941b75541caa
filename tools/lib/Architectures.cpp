//===- Architectures.cpp - The per-architecture table of moe-import -------===//
//
// One entry per architecture: what llama.cpp's graph code fixes for the
// model's MoE feed-forward sub-block rather than reading from the GGUF file.
// Sources are llama.cpp's src/models/<arch>.cpp (the call of build_moe_ffn
// and the norm before it) and build_moe_ffn in src/llama-graph.cpp.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/Architectures.h"

#include "llvm/ADT/STLExtras.h"

using namespace moe;

namespace {
const ArchInfo kArchitectures[] = {
    // qwen3moe (Qwen3-30B-A3B, ...): llama.cpp src/models/qwen3moe.cpp.
    //   cur = build_norm(ffn_inp, layers[il].ffn_norm, NULL, LLM_NORM_RMS, il);
    //   build_moe_ffn(cur, ffn_gate_inp, ffn_up_exps, ffn_gate_exps,
    //                 ffn_down_exps, nullptr, n_expert, n_expert_used,
    //                 LLM_FFN_SILU, /*norm_w=*/true, /*scale_w=*/false, 0.0,
    //                 LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX, il);
    // No biases; the weight normalisation clamps the sum at 6.103515625e-5
    // (src/llama-graph.cpp, build_moe_ffn).
    {
        /*name=*/"qwen3moe",
        /*llamaSource=*/"src/models/qwen3moe.cpp, src/llama-graph.cpp (build_moe_ffn)",
        /*ffnNorm=*/"ffn_norm.weight",
        /*gating=*/Gating::Softmax,
        /*normWeights=*/true,
        /*routerBias=*/false,
        /*expertBiases=*/false,
        /*activation=*/Activation::Swiglu,
    },
    // gpt-oss (LLM_ARCH_OPENAI_MOE): llama.cpp src/models/openai-moe-iswa.cpp.
    //   cur = build_norm(ffn_inp, layers[il].attn_post_norm, nullptr,
    //                    LLM_NORM_RMS, il);   // "blk.L.post_attention_norm"
    //   build_moe_ffn(cur, ffn_gate_inp, ffn_up_exps, ffn_gate_exps,
    //                 ffn_down_exps, nullptr, n_expert, n_expert_used,
    //                 LLM_FFN_SWIGLU_OAI_MOE, /*norm_w=*/false,
    //                 /*scale_w=*/false, 0.0,
    //                 LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT, il,
    //                 nullptr, ffn_gate_inp_b, ffn_up_exps_b, ffn_gate_exps_b,
    //                 ffn_down_exps_b);
    // swiglu_oai's alpha 1.702 and limit 7.0 are constants of build_moe_ffn
    // (src/llama-graph.cpp), not metadata.
    {
        /*name=*/"gpt-oss",
        /*llamaSource=*/"src/models/openai-moe-iswa.cpp, src/llama-graph.cpp (build_moe_ffn)",
        /*ffnNorm=*/"post_attention_norm.weight",
        /*gating=*/Gating::SoftmaxWeight,
        /*normWeights=*/false,
        /*routerBias=*/true,
        /*expertBiases=*/true,
        /*activation=*/Activation::SwigluOai,
        /*oaiAlpha=*/1.702f,
        /*oaiLimit=*/7.0f,
    },
};
} // namespace

llvm::ArrayRef<ArchInfo> moe::architectures() { return kArchitectures; }

const ArchInfo *moe::findArchitecture(llvm::StringRef name) {
  for (const ArchInfo &a : kArchitectures)
    if (a.name == name)
      return &a;
  return nullptr;
}

std::string moe::supportedArchitectures() {
  std::string s;
  for (const ArchInfo &a : kArchitectures) {
    if (!s.empty())
      s += ", ";
    s += a.name.str();
  }
  return s;
}
