//===- ImportMain.cpp - The moe-import driver -----------------------------===//
//
// moe-import model.gguf (--layer L | --all) [-o OUT]
//
// Writes the MoE feed-forward sub-block of a GGUF model's block L as one
// `.moe` function @ffn_blk_L (docs/Import.md):
//
//   func @ffn_blk_L(%x: tensor<T x n_embd x f32>, <params>)
//       -> tensor<T x n_embd x f32> where T in [1, 8192]
//
// %x is the residual stream entering the sub-block (llama.cpp's ffn_inp);
// the result is what llama.cpp adds back to it (the residual add itself is
// not included). The op sequence is llama.cpp's for the architecture: the
// pre-FFN rms_norm and build_moe_ffn, with what the file does not say taken
// from the table of Architectures.cpp. Every param carries its GGUF tensor
// name ({param, gguf = "blk.L.ffn_up_exps.weight"}) and the tensor's stored
// element type, and is named after the tensor without "blk.L." and with
// dots as underscores (%ffn_up_exps_weight).
//
// Sizes come from the metadata ({arch}.embedding_length,
// {arch}.expert_feed_forward_length, {arch}.expert_count,
// {arch}.expert_used_count, {arch}.block_count,
// {arch}.attention.layer_norm_rms_epsilon); every tensor's shape is checked
// against them. The text is parsed and verified before it is written: a
// failure there is an internal error of moe-import. Errors are
// `moe-import: error: ...` and exit code 1.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/ImportMain.h"
#include "tools/lib/Architectures.h"

#include "ir/Parser.h"
#include "ir/Verifier.h"
#include "runtime/GgufSource.h"

#include "fmt/format.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>

using namespace moe;
namespace cl = llvm::cl;

namespace {

llvm::Error err(std::string m) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), m);
}

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

/// The hyper-parameters of one file, read and checked once.
struct HParams {
  const ArchInfo *arch = nullptr;
  uint32_t nEmbd = 0, nFf = 0, nExpert = 0, nExpertUsed = 0, nLayer = 0;
  float eps = 0;
};

llvm::Expected<HParams> readHParams(const gguf::GgufFile &f) {
  HParams hp;
  auto archName = f.getString("general.architecture");
  if (!archName)
    return archName.takeError();
  hp.arch = findArchitecture(*archName);
  if (!hp.arch)
    return err(fmt::format("{}: unsupported architecture '{}' (general.architecture); "
                           "moe-import supports: {}",
                           f.name(), archName->str(), supportedArchitectures()));
  std::string a = hp.arch->name.str();
  struct Count {
    const char *suffix;
    uint32_t *out;
  };
  for (auto [suffix, out] : {Count{"embedding_length", &hp.nEmbd},
                             Count{"expert_feed_forward_length", &hp.nFf},
                             Count{"expert_count", &hp.nExpert},
                             Count{"expert_used_count", &hp.nExpertUsed},
                             Count{"block_count", &hp.nLayer}}) {
    std::string key = a + "." + suffix;
    auto v = f.getU32(key);
    if (!v)
      return err(fmt::format("{} (moe-import reads it for {})", llvm::toString(v.takeError()),
                             a));
    if (*v == 0)
      return err(fmt::format("{}: key '{}' is 0, expected at least 1", f.name(), key));
    *out = *v;
  }
  if (hp.nExpertUsed > hp.nExpert)
    return err(fmt::format("{}: key '{}.expert_used_count' is {}, more than {}.expert_count "
                           "= {}",
                           f.name(), a, hp.nExpertUsed, a, hp.nExpert));
  std::string epsKey = a + ".attention.layer_norm_rms_epsilon";
  auto eps = f.getF32(epsKey);
  if (!eps)
    return err(fmt::format("{} (moe-import reads it for {})", llvm::toString(eps.takeError()),
                           a));
  if (!(*eps >= 0) || !std::isfinite(*eps))
    return err(fmt::format("{}: key '{}' is {}, expected a finite value >= 0", f.name(),
                           epsKey, *eps));
  hp.eps = *eps;
  return hp;
}

/// One param of the emitted function.
struct Param {
  std::string name; // without '%'
  std::string gguf;
  ElemType elem;
  std::vector<int64_t> dims;
};

/// Checks tensor blk.L.<suffix> against `dims`; `anyType` allows every
/// stored type moe uses (matmul weights), else f32 is required.
llvm::Expected<Param> param(const gguf::GgufFile &f, int64_t layer, llvm::StringRef suffix,
                            std::vector<int64_t> dims, bool anyType, const HParams &hp) {
  std::string name = fmt::format("blk.{}.{}", layer, suffix.str());
  auto t = f.tensor(name);
  if (!t)
    return err(fmt::format("{}: no tensor named '{}' (needed for block {} of {})", f.name(),
                           name, layer, hp.arch->name.str()));
  auto elem = elemTypeFromGgml(t->type);
  if (!elem)
    return err(fmt::format("{}: tensor '{}' has type {}, which moe does not support (f32, "
                           "f16, bf16, q8_0, q4_0, mxfp4)",
                           f.name(), name, t->typeName().str()));
  if (!anyType && *elem != ElemType::F32)
    return err(fmt::format("{}: tensor '{}' has type {}; moe-import needs f32 here",
                           f.name(), name, t->typeName().str()));
  auto got = t->dims();
  if (llvm::ArrayRef<int64_t>(got) != llvm::ArrayRef<int64_t>(dims))
    return err(fmt::format("{}: tensor '{}' has shape {}, but the metadata gives {} "
                           "(n_embd {}, n_ff {}, {} experts)",
                           f.name(), name, dimsStr(got), dimsStr(dims), hp.nEmbd, hp.nFf,
                           hp.nExpert));
  Param p;
  p.name = suffix.str();
  std::replace(p.name.begin(), p.name.end(), '.', '_');
  p.gguf = name;
  p.elem = *elem;
  p.dims = std::move(dims);
  return p;
}

std::string tensorType(llvm::ArrayRef<std::string> dims, llvm::StringRef elem) {
  std::string s = "tensor<";
  for (auto &d : dims)
    s += d + " x ";
  return s + elem.str() + ">";
}

/// The text of @ffn_blk_<layer>.
llvm::Expected<std::string> emitLayer(const gguf::GgufFile &f, const HParams &hp,
                                      int64_t layer) {
  if (layer < 0 || layer >= hp.nLayer)
    return err(fmt::format("--layer {}: {} has {} blocks ({}.block_count), 0 to {}", layer,
                           f.name(), hp.nLayer, hp.arch->name.str(), hp.nLayer - 1));
  const ArchInfo &A = *hp.arch;
  int64_t D = hp.nEmbd, F = hp.nFf, E = hp.nExpert, K = hp.nExpertUsed;
  std::vector<Param> ps;
  auto add = [&](llvm::StringRef suffix, std::vector<int64_t> dims,
                 bool anyType) -> llvm::Error {
    auto p = param(f, layer, suffix, std::move(dims), anyType, hp);
    if (!p)
      return p.takeError();
    ps.push_back(std::move(*p));
    return llvm::Error::success();
  };
  // Order: norm, router, then up, gate, down (each followed by its bias).
  if (auto e = add(A.ffnNorm, {D}, false))
    return e;
  if (auto e = add("ffn_gate_inp.weight", {E, D}, true))
    return e;
  if (A.routerBias)
    if (auto e = add("ffn_gate_inp.bias", {E}, false))
      return e;
  for (auto [w, n, k] : {std::tuple{"up", F, D}, std::tuple{"gate", F, D},
                         std::tuple{"down", D, F}}) {
    if (auto e = add(fmt::format("ffn_{}_exps.weight", w), {E, n, k}, true))
      return e;
    if (A.expertBiases)
      if (auto e = add(fmt::format("ffn_{}_exps.bias", w), {E, n}, false))
        return e;
  }
  auto P = [&](llvm::StringRef suffix) {
    std::string n = suffix.str();
    std::replace(n.begin(), n.end(), '.', '_');
    return "%" + n;
  };

  std::string Ds = std::to_string(D), Es = std::to_string(E), Ks = std::to_string(K);
  auto ty = [&](std::initializer_list<std::string> dims, llvm::StringRef elem = "f32") {
    return tensorType(std::vector<std::string>(dims), elem);
  };
  std::string s;
  s += fmt::format("// {} block {}: the MoE feed-forward sub-block as llama.cpp builds it\n"
                   "// ({}).\n// n_embd {}, expert n_ff {}, {} experts, top-{}.\n",
                   A.name.str(), layer, A.llamaSource.str(), D, F, E, K);
  s += fmt::format("func @ffn_blk_{}(%x: {}", layer, ty({"T", Ds}));
  for (auto &p : ps) {
    std::vector<std::string> d;
    for (int64_t v : p.dims)
      d.push_back(std::to_string(v));
    s += fmt::format(",\n    %{}: {} {{param, gguf = \"{}\"}}", p.name,
                     tensorType(d, elemTypeName(p.elem)), p.gguf);
  }
  s += fmt::format(")\n    -> {} where T in [1, 8192] {{\n", ty({"T", Ds}));
  auto op = [&](const std::string &line) { s += "  " + line + "\n"; };
  op(fmt::format("%xn = rms_norm %x, {} {{eps = {}}} : {}", P(A.ffnNorm), flt(hp.eps),
                 ty({"T", Ds})));
  std::string logits = "%logits";
  op(fmt::format("%logits = matmul %xn, %ffn_gate_inp_weight : {}", ty({"T", Es})));
  if (A.routerBias) {
    op(fmt::format("%logits_b = add %logits, %ffn_gate_inp_bias : {}", ty({"T", Es})));
    logits = "%logits_b";
  }
  std::string w;
  switch (A.gating) {
  case Gating::Softmax:
    op(fmt::format("%probs = softmax {} {{axis = -1}} : {}", logits, ty({"T", Es})));
    op(fmt::format("%ids = topk %probs {{k = {}}} : {}", K, ty({"T", Ks}, "i32")));
    op(fmt::format("%w = gather %probs, %ids {{axis = 1}} : {}", ty({"T", Ks})));
    w = "%w";
    break;
  case Gating::SoftmaxWeight:
    op(fmt::format("%ids = topk {} {{k = {}}} : {}", logits, K, ty({"T", Ks}, "i32")));
    op(fmt::format("%wl = gather {}, %ids {{axis = 1}} : {}", logits, ty({"T", Ks})));
    op(fmt::format("%w = softmax %wl {{axis = -1}} : {}", ty({"T", Ks})));
    w = "%w";
    break;
  }
  if (A.normWeights) {
    op(fmt::format("%wsum = reduce_sum {} {{axis = 1, keepdim}} : {}", w, ty({"T", "1"})));
    op(fmt::format("%wsc = clamp %wsum {{min = 6.103515625e-5}} : {}", ty({"T", "1"})));
    op(fmt::format("%wn = div {}, %wsc : {}", w, ty({"T", Ks})));
    w = "%wn";
  }
  op(fmt::format("%x3 = reshape %xn {{shape = [T, 1, {}]}} : {}", D, ty({"T", "1", Ds})));
  std::string Fs = std::to_string(F);
  auto expert = [&](const char *which, const char *in, const std::string &n) {
    std::string v = fmt::format("%{}", which);
    std::string raw = A.expertBiases ? v + "0" : v;
    op(fmt::format("{} = matmul_id {}, %ffn_{}_exps_weight, %ids : {}", raw, in, which,
                   ty({"T", Ks, n})));
    if (A.expertBiases)
      op(fmt::format("{} = add_id {}, %ffn_{}_exps_bias, %ids : {}", v, raw, which,
                     ty({"T", Ks, n})));
  };
  expert("up", "%x3", Fs);
  expert("gate", "%x3", Fs);
  switch (A.activation) {
  case Activation::Swiglu:
    op(fmt::format("%act = swiglu %gate, %up : {}", ty({"T", Ks, Fs})));
    break;
  case Activation::SwigluOai:
    op(fmt::format("%act = swiglu_oai %gate, %up {{alpha = {}, limit = {}}} : {}", flt(A.oaiAlpha),
                   flt(A.oaiLimit), ty({"T", Ks, Fs})));
    break;
  }
  expert("down", "%act", Ds);
  op(fmt::format("%w3 = reshape {} {{shape = [T, {}, 1]}} : {}", w, K, ty({"T", Ks, "1"})));
  op(fmt::format("%wd = mul %down, %w3 : {}", ty({"T", Ks, Ds})));
  op(fmt::format("%out = reduce_sum %wd {{axis = 1}} : {}", ty({"T", Ds})));
  op("return %out");
  s += "}\n";
  return s;
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
  auto hp = readHParams(file);
  if (!hp)
    return hp.takeError();
  auto text = emitLayer(file, *hp, layer);
  if (!text)
    return text.takeError();
  if (auto e = check(*text))
    return e;
  return text;
}

llvm::Expected<std::string> moe::importAll(const gguf::GgufFile &file) {
  auto hp = readHParams(file);
  if (!hp)
    return hp.takeError();
  std::string all;
  for (uint32_t l = 0; l < hp->nLayer; ++l) {
    auto text = emitLayer(file, *hp, l);
    if (!text)
      return text.takeError();
    if (l)
      all += "\n";
    all += *text;
  }
  if (auto e = check(all))
    return e;
  return all;
}

namespace {
struct ImportFlags {
  cl::OptionCategory cat{"moe-import options"};
  cl::opt<std::string> input{cl::Positional, cl::desc("<model.gguf>"), cl::Required,
                             cl::cat(cat)};
  cl::opt<int64_t> layer{"layer", cl::desc("The block whose feed-forward sub-block to import"),
                         cl::value_desc("L"), cl::init(-1), cl::cat(cat)};
  cl::opt<bool> all{"all", cl::desc("Import every block, one function each"), cl::cat(cat)};
  cl::opt<std::string> output{"o", cl::desc("Output file (default: standard output)"),
                              cl::value_desc("OUT"), cl::init("-"), cl::cat(cat)};
};

int fail(llvm::Error e) {
  llvm::errs() << "moe-import: error: " << llvm::toString(std::move(e)) << "\n";
  return 1;
}
} // namespace

int moe::moeImportMain(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  ImportFlags flags;
  cl::HideUnrelatedOptions(flags.cat);
  cl::ParseCommandLineOptions(argc, argv,
                              "moe-import: a GGUF model's MoE feed-forward sub-blocks as .moe\n");
  if (flags.all == (flags.layer.getNumOccurrences() > 0))
    return fail(err("give exactly one of --layer L and --all"));
  auto file = gguf::GgufFile::open(flags.input);
  if (!file)
    return fail(file.takeError());
  auto text = flags.all ? importAll(**file) : importLayer(**file, flags.layer);
  if (!text)
    return fail(text.takeError());
  std::error_code ec;
  llvm::ToolOutputFile out(flags.output, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return fail(err(fmt::format("-o {}: {}", flags.output.getValue(), ec.message())));
  out.os() << *text;
  out.os().flush();
  if (out.os().has_error())
    return fail(err(fmt::format("-o {}: write error", flags.output.getValue())));
  out.keep();
  return 0;
}
