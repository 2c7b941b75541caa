//===- Importer.cpp - A GGUF block's MoE sub-block as .moe text ----------===//
//
// The library behind moe-import (tools/lib/ImportMain.cpp is its command
// line). It writes the MoE feed-forward sub-block of a GGUF model's block L
// as one `.moe` function @ffn_blk_L (docs/Import.md):
//
//   func @ffn_blk_L(%x: tensor<T x n_embd x f32>, <params>)
//       -> tensor<T x n_embd x f32> where T in [1, 8192]
//          attributes {architecture = "<general.architecture>"}
//
// %x is the residual stream entering the sub-block (llama.cpp's ffn_inp);
// the result is what llama.cpp adds back to it (the residual add itself is
// not included). The ops are llama.cpp's for the architecture: the pre-FFN
// norm, the router, build_moe_ffn, and what the model computes beside the
// experts (qwen2moe's and qwen35moe's gated shared expert, gemma4's dense MLP and post
// norms), with what the file does not say taken from the table of
// Architectures.cpp. The tensors are that table's blockTensors(), each
// checked against the file; optional parts (a merged gate_up, llama's
// missing gate, per-expert scales) are probed in the file. Every
// param carries its GGUF tensor name ({param, gguf =
// "blk.L.ffn_up_exps.weight"}) and the tensor's stored element type, and is
// named after the tensor without "blk.L." and with dots as underscores
// (%ffn_up_exps_weight).
//
// The text is parsed and verified before it is written: a failure there is
// an internal error of the importer. docs/Import.md lists the keys and tensors
// of each architecture.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/Importer.h"
#include "ir/Error.h"
#include "tools/lib/Architectures.h"

#include "ir/Parser.h"
#include "ir/Verifier.h"
#include "runtime/GgufSource.h"

#include "fmt/format.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>

using namespace moe;

namespace {

/// A float as the text format writes it, always with a '.' or an exponent.
std::string flt(float v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos)
    s += ".0";
  return s;
}

std::string dimsStr(llvm::ArrayRef<int64_t> d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i)
    s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

/// One param of the emitted function.
struct Param {
  std::string name; // without '%'
  std::string gguf;
  ElemType elem;
  std::vector<int64_t> dims;
};

std::string paramName(llvm::StringRef suffix) {
  std::string n = suffix.str();
  std::replace(n.begin(), n.end(), '.', '_');
  return n;
}

/// Checks tensor blk.L.<spec.suffix> against the spec: present, of a type
/// moe uses (f32 unless it is a matmul weight), of the spec's shape.
llvm::Expected<Param> param(const gguf::GgufFile &f, int64_t layer, const TensorSpec &spec,
                            const ArchInfo &A, const BlockSizes &s) {
  std::string name = fmt::format("blk.{}.{}", layer, spec.suffix);
  auto t = f.tensor(name);
  if (!t) {
    llvm::consumeError(t.takeError());
    std::string legacy;
    llvm::StringRef proj = spec.suffix; // ffn_up_exps.weight: is there ffn_up.0.weight?
    if (proj.consume_back("_exps.weight") &&
        f.findTensor(fmt::format("blk.{}.{}.0.weight", layer, proj.str())))
      legacy = "; the file holds one tensor per expert (blk.L.ffn_*.E.weight, the pre-2024 "
               "layout, which llama.cpp no longer loads either): convert it again with a "
               "current convert_hf_to_gguf.py";
    return err(fmt::format("{}: no tensor named '{}' (needed for block {} of {}){}", f.name(),
                           name, layer, A.name.str(), legacy));
  }
  auto elem = elemTypeFromGgml(t->type);
  if (!elem)
    return err(fmt::format("{}: tensor '{}' has type {}, which moe does not support (f32, "
                           "f16, bf16, q8_0, q4_0, mxfp4)",
                           f.name(), name, t->typeName().str()));
  if (!spec.weight && *elem != ElemType::F32)
    return err(fmt::format("{}: tensor '{}' has type {}; moe-import needs f32 here",
                           f.name(), name, t->typeName().str()));
  auto got = t->dims();
  if (llvm::ArrayRef<int64_t>(got) != llvm::ArrayRef<int64_t>(spec.dims)) {
    std::string sizes = fmt::format("n_embd {}, n_ff {}, {} experts", s.nEmbd, s.nFf, s.nExpert);
    if (A.sharedExpert)
      sizes += fmt::format(", shared n_ff {}", s.nFfShared);
    if (A.gemma4Dense)
      sizes += fmt::format(", dense n_ff {}", s.nFfDense);
    return err(fmt::format("{}: tensor '{}' has shape {}, but the metadata gives {} ({})",
                           f.name(), name, dimsStr(got), dimsStr(spec.dims), sizes));
  }
  if (isQuantized(*elem) && spec.dims.back() % 32)
    return err(fmt::format("{}: tensor '{}' is {} with rows of {} elements, not a multiple "
                           "of 32", f.name(), name, t->typeName().str(), spec.dims.back()));
  return Param{paramName(spec.suffix), name, *elem, spec.dims};
}

std::string tensorType(llvm::ArrayRef<std::string> dims, llvm::StringRef elem) {
  std::string s = "tensor<";
  for (auto &d : dims)
    s += d + " x ";
  return s + elem.str() + ">";
}

/// Whether block `layer` has experts (gemma4 mixes dense and MoE blocks:
/// a MoE block is one with ffn_gate_inp.weight, as llama.cpp decides).
bool isMoeBlock(const gguf::GgufFile &f, const ArchInfo &A, int64_t layer) {
  return !A.gemma4Dense || f.findTensor(fmt::format("blk.{}.ffn_gate_inp.weight", layer));
}

/// The optional parts block `layer` has in `f`.
BlockVariant probeVariant(const gguf::GgufFile &f, const ArchInfo &A, int64_t layer) {
  auto has = [&](const char *suffix) {
    return f.findTensor(fmt::format("blk.{}.{}", layer, suffix)) != nullptr;
  };
  BlockVariant v;
  // llama.cpp's create_tensor_gate_up_exps takes the merged tensor first and
  // the separate ones only without it.
  v.mergedGateUp = A.mayMergeGateUp && has("ffn_gate_up_exps.weight");
  v.hasGate = !A.gateOptional || v.mergedGateUp || has("ffn_gate_exps.weight");
  // llama.cpp loads the up/gate scales only beside separate up/gate
  // tensors (llama_model::load_tensors' generic ".scale" pass).
  v.upScale = A.expertScales && !v.mergedGateUp && has("ffn_up_exps.scale");
  v.gateScale = A.expertScales && !v.mergedGateUp && has("ffn_gate_exps.scale");
  v.downScale = A.expertScales && has("ffn_down_exps.scale");
  v.denseUpScale = A.gemma4Dense && has("ffn_up.scale");
  v.denseGateScale = A.gemma4Dense && has("ffn_gate.scale");
  v.denseDownScale = A.gemma4Dense && has("ffn_down.scale");
  return v;
}

/// Writes the ops of one block, each `%name = op ... : type`.
class BlockEmitter {
public:
  BlockEmitter(const ArchInfo &A, const BlockSizes &s, const BlockVariant &v)
      : A(A), s(s), v(v) {}

  std::string body() {
    std::string D = str(s.nEmbd), E = str(s.nExpert), K = str(s.nExpertUsed), F = str(s.nFf);
    std::string eps = flt(s.eps);
    std::string dense;
    if (A.gemma4Dense) {
      // The dense MLP beside the experts: build_ffn(GELU, PAR), post norm 1.
      std::string Fd = str(s.nFfDense);
      op("hd", fmt::format("rms_norm %x, %ffn_norm_weight {{eps = {}}}", eps), {"T", D});
      // build_ffn multiplies each projection by its optional scale [1].
      auto proj = [&](const char *name, const char *in, const char *w, bool scaled,
                      const std::string &n) {
        std::string r = op(scaled ? std::string(name) + "0" : name,
                           fmt::format("matmul {}, %ffn_{}_weight", in, w), {"T", n});
        if (scaled)
          r = op(name, fmt::format("mul {}, %ffn_{}_scale", r, w), {"T", n});
        return r;
      };
      std::string dg = proj("dg", "%hd", "gate", v.denseGateScale, Fd);
      std::string du = proj("du", "%hd", "up", v.denseUpScale, Fd);
      op("da", fmt::format("geglu {}, {}", dg, du), {"T", Fd});
      std::string dd = proj("dd", "%da", "down", v.denseDownScale, D);
      dense = op("dense",
                 fmt::format("rms_norm {}, %post_ffw_norm_1_weight {{eps = {}}}", dd, eps),
                 {"T", D});
    }
    std::string xn = op("xn", fmt::format("rms_norm %x, %{} {{eps = {}}}", paramName(A.ffnNorm),
                                          eps),
                        {"T", D});
    // The router.
    std::string rin = xn;
    if (A.router == RouterInput::Gemma4Scaled) {
      op("rn", fmt::format("rms_norm %x {{eps = {}}}", eps), {"T", D});
      op("rs", fmt::format("scale %rn {{factor = {}}}", flt(1.0f / std::sqrt((float)s.nEmbd))),
         {"T", D});
      rin = op("rin", "mul %rs, %ffn_gate_inp_scale", {"T", D});
    }
    std::string logits = op("logits", "matmul " + rin + ", %ffn_gate_inp_weight", {"T", E});
    if (A.routerBias)
      logits = op("logits_b", "add %logits, %ffn_gate_inp_bias", {"T", E});
    std::string w;
    switch (A.gating) {
    case Gating::Softmax:
      op("probs", "softmax " + logits + " {axis = -1}", {"T", E});
      op("ids", fmt::format("topk %probs {{k = {}}}", K), {"T", K}, "i32");
      w = op("w", "gather %probs, %ids {axis = 1}", {"T", K});
      break;
    case Gating::SoftmaxWeight:
      op("ids", fmt::format("topk {} {{k = {}}}", logits, K), {"T", K}, "i32");
      op("wl", "gather " + logits + ", %ids {axis = 1}", {"T", K});
      w = op("w", "softmax %wl {axis = -1}", {"T", K});
      break;
    }
    if (A.normWeights) {
      op("wsum", "reduce_sum " + w + " {axis = 1, keepdim}", {"T", "1"});
      op("wsc", "clamp %wsum {min = 6.103515625e-5}", {"T", "1"});
      w = op("wn", "div " + w + ", %wsc", {"T", K});
    }
    op("x3", fmt::format("reshape {} {{shape = [T, 1, {}]}}", xn, D), {"T", "1", D});
    // The experts.
    std::string gate, up;
    if (v.mergedGateUp) {
      std::string gu = expert("gate_up", "%x3", str(2 * s.nFf), "");
      gate = op("gate", fmt::format("slice {} {{axis = 2, start = 0, size = {}}}", gu, F),
                {"T", K, F});
      up = op("up", fmt::format("slice {} {{axis = 2, start = {}, size = {}}}", gu, F, F),
              {"T", K, F});
    } else {
      up = expert("up", "%x3", F, v.upScale ? "up" : "");
      if (v.hasGate)
        gate = expert("gate", "%x3", F, v.gateScale ? "gate" : "");
    }
    std::string act;
    switch (A.activation) {
    case Activation::Swiglu:
      act = v.hasGate ? op("act", "swiglu " + gate + ", " + up, {"T", K, F})
                      : op("act", "silu " + up, {"T", K, F});
      break;
    case Activation::SwigluOai:
      act = op("act", fmt::format("swiglu_oai {}, {} {{alpha = {}, limit = {}}}", gate, up,
                                  flt(A.oaiAlpha), flt(A.oaiLimit)),
               {"T", K, F});
      break;
    case Activation::Geglu:
      act = op("act", "geglu " + gate + ", " + up, {"T", K, F});
      break;
    }
    std::string down = expert("down", act, D, v.downScale ? "down" : "");
    op("w3", fmt::format("reshape {} {{shape = [T, {}, 1]}}", w, K), {"T", K, "1"});
    op("wd", "mul " + down + ", %w3", {"T", K, D});
    bool more = A.sharedExpert || A.gemma4Dense; // the experts' sum is not the result
    std::string out = op(more ? "moe" : "out", "reduce_sum %wd {axis = 1}", {"T", D});
    if (A.sharedExpert) {
      // build_ffn(SILU, PAR) on the same input, times sigmoid(x . gate_inp_shexp).
      std::string Fs = str(s.nFfShared);
      op("sg", "matmul " + xn + ", %ffn_gate_shexp_weight", {"T", Fs});
      op("su", "matmul " + xn + ", %ffn_up_shexp_weight", {"T", Fs});
      op("sa", "swiglu %sg, %su", {"T", Fs});
      op("sd", "matmul %sa, %ffn_down_shexp_weight", {"T", D});
      op("zw", fmt::format("reshape %ffn_gate_inp_shexp_weight {{shape = [1, {}]}}", D), {"1", D},
         elemTypeName(shexpGateElem).str());
      op("z", "matmul " + xn + ", %zw", {"T", "1"});
      op("zg", "sigmoid %z", {"T", "1"});
      op("shared", "mul %sd, %zg", {"T", D});
      out = op("out", "add %moe, %shared", {"T", D});
    }
    if (A.gemma4Dense) {
      op("moe_n", fmt::format("rms_norm %moe, %post_ffw_norm_2_weight {{eps = {}}}", eps),
         {"T", D});
      op("sum", "add " + dense + ", %moe_n", {"T", D});
      out = op("out", fmt::format("rms_norm %sum, %post_ffw_norm_weight {{eps = {}}}", eps),
               {"T", D});
    }
    text += "  return " + out + "\n";
    return text;
  }

  /// The element type of ffn_gate_inp_shexp (its reshape is typed).
  ElemType shexpGateElem = ElemType::F32;

private:
  const ArchInfo &A;
  const BlockSizes &s;
  const BlockVariant &v;
  std::string text;

  static std::string str(int64_t v) { return std::to_string(v); }

  /// `%name = rhs : tensor<dims x elem>`; returns "%name".
  std::string op(const std::string &name, const std::string &rhs,
                 std::initializer_list<std::string> dims, llvm::StringRef elem = "f32") {
    text += fmt::format("  %{} = {} : {}\n", name, rhs,
                        tensorType(std::vector<std::string>(dims), elem));
    return "%" + name;
  }

  /// matmul_id of ffn_<which>_exps, then its per-expert scale (named by
  /// `scaleOf`, build_lora_mm_id) and its bias (add_id).
  std::string expert(const std::string &which, const std::string &in, const std::string &n,
                     const std::string &scaleOf) {
    std::string K = str(s.nExpertUsed);
    std::string v = fmt::format("%ffn_{}_exps_weight", which);
    std::string cur = op(which + (A.expertBiases || !scaleOf.empty() ? "0" : ""),
                         "matmul_id " + in + ", " + v + ", %ids", {"T", K, n});
    if (!scaleOf.empty()) {
      op(which + "_s", fmt::format("gather %ffn_{}_exps_scale, %ids {{axis = 0}}", scaleOf),
         {"T", K});
      op(which + "_s3", fmt::format("reshape %{}_s {{shape = [T, {}, 1]}}", which, K),
         {"T", K, "1"});
      cur = op(which + (A.expertBiases ? "1" : ""), fmt::format("mul {}, %{}_s3", cur, which),
               {"T", K, n});
    }
    if (A.expertBiases)
      cur = op(which, fmt::format("add_id {}, %ffn_{}_exps_bias, %ids", cur, which),
               {"T", K, n});
    return cur;
  }
};

/// The text of @ffn_blk_<layer>.
llvm::Expected<std::string> emitLayer(const gguf::GgufFile &f, const ModelInfo &m,
                                      int64_t layer) {
  if (layer < 0 || layer >= m.nLayer)
    return err(fmt::format("--layer {}: {} has {} blocks ({}.block_count), 0 to {}", layer,
                           f.name(), m.nLayer, m.prefix, m.nLayer - 1));
  const ArchInfo &A = *m.arch;
  if (!isMoeBlock(f, A, layer))
    return err(fmt::format("--layer {}: block {} of {} is dense (no tensor "
                           "'blk.{}.ffn_gate_inp.weight'); moe-import imports MoE blocks",
                           layer, layer, f.name(), layer));
  auto s = readBlockSizes(f, m, layer);
  if (!s)
    return s.takeError();
  BlockVariant v = probeVariant(f, A, layer);
  // qwen35moe's build_ffn would multiply the shared expert's projections by
  // these per-tensor scales; the table does not: refuse rather than import
  // a different function.
  if (A.sharedExpert)
    for (const char *w : {"up", "gate", "down"})
      if (std::string n = fmt::format("blk.{}.ffn_{}_shexp.scale", layer, w); f.findTensor(n))
        return err(fmt::format("{}: tensor '{}' (a per-tensor scale of the shared expert) is "
                               "not supported by moe-import",
                               f.name(), n));
  std::vector<Param> ps;
  for (const TensorSpec &spec : blockTensors(A, *s, v)) {
    auto p = param(f, layer, spec, A, *s);
    if (!p)
      return p.takeError();
    ps.push_back(std::move(*p));
  }
  BlockEmitter em(A, *s, v);
  for (auto &p : ps)
    if (p.gguf.ends_with("ffn_gate_inp_shexp.weight"))
      em.shexpGateElem = p.elem;

  std::string D = std::to_string(s->nEmbd);
  std::string t;
  t += fmt::format("// {} block {}: the feed-forward sub-block as llama.cpp builds it\n"
                   "// ({}).\n// n_embd {}, expert n_ff {}, {} experts, top-{}",
                   A.name.str(), layer, A.llamaSource.str(), s->nEmbd, s->nFf, s->nExpert,
                   s->nExpertUsed);
  if (A.sharedExpert)
    t += fmt::format(", shared expert n_ff {}", s->nFfShared);
  if (A.gemma4Dense)
    t += fmt::format(", dense MLP n_ff {}", s->nFfDense);
  if (v.mergedGateUp)
    t += ", merged gate_up";
  t += ".\n";
  t += fmt::format("func @ffn_blk_{}(%x: {}", layer, tensorType({"T", D}, "f32"));
  for (auto &p : ps) {
    std::vector<std::string> d;
    for (int64_t x : p.dims)
      d.push_back(std::to_string(x));
    t += fmt::format(",\n    %{}: {} {{param, gguf = \"{}\"}}", p.name,
                     tensorType(d, elemTypeName(p.elem)), p.gguf);
  }
  // The file's architecture, which bindGgufParams checks a model against.
  t += fmt::format(")\n    -> {} where T in [1, 8192] attributes {{architecture = \"{}\"}} {{\n",
                   tensorType({"T", D}, "f32"), m.prefix);
  t += em.body();
  t += "}\n";
  return t;
}

/// Parses and verifies `text`: moe-import's output must be valid IR.
llvm::Error check(const std::string &text) {
  auto m = parseModuleString(text, "<moe-import output>");
  if (!m)
    return err("internal error: the imported module does not parse: " +
               llvm::toString(m.takeError()));
  DiagEngine diag;
  if (!verifyModule(**m, diag))
    return err("internal error: the imported module does not verify (see above)");
  return llvm::Error::success();
}

} // namespace

llvm::Expected<std::string> moe::importLayer(const gguf::GgufFile &file, int64_t layer) {
  auto m = readModelInfo(file);
  if (!m)
    return m.takeError();
  auto text = emitLayer(file, *m, layer);
  if (!text)
    return text.takeError();
  if (auto e = check(*text))
    return e;
  return text;
}

llvm::Expected<std::string> moe::importAll(const gguf::GgufFile &file) {
  auto m = readModelInfo(file);
  if (!m)
    return m.takeError();
  std::string all;
  int64_t imported = 0;
  for (int64_t l = 0; l < m->nLayer; ++l) {
    if (!isMoeBlock(file, *m->arch, l)) {
      all += fmt::format("{}// block {}: dense (no blk.{}.ffn_gate_inp.weight), not imported\n",
                         all.empty() ? "" : "\n", l, l);
      continue;
    }
    auto text = emitLayer(file, *m, l);
    if (!text)
      return text.takeError();
    if (!all.empty())
      all += "\n";
    all += *text;
    ++imported;
  }
  if (!imported)
    return err(fmt::format("{}: none of its {} blocks has experts", file.name(), m->nLayer));
  if (auto e = check(all))
    return e;
  return all;
}
