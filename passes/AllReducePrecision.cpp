//===- AllReducePrecision.cpp - all_reduce in f16/bf16 from N tokens on ---===//
//
// Halves what an all_reduce sends when the token count is large, as
// ik_llama.cpp's split mode graph does for big batches, but with the error
// checked: each f32 `all_reduce %p` becomes
//   cast (all_reduce (cast %p {to = type})) {to = f32}
// The communicator sums the 16-bit partials in f32 and rounds once
// (docs/SPMD.md), so each result moves by the rounding of every rank's
// partial and of the sum: (ranks + 1) * u relative to the largest result
// (u = 2^-8 for bf16, 2^-11 for f16), the bound numericTolerance() states
// for --verify-numerics (docs/Passes.md has the derivation and the measured
// errors).
//
// Only where T >= min-tokens, T being the all_reduces' token dim (their
// leading dim, one symbol). The IR has no conditional, so the function is
// specialised by T's range (variants, docs/IR.md): where T's range straddles
// N the function keeps its body (below N it is unchanged) and lists a
// variant @<name>.<type>_from_<N>, a copy for T in [N, hi] with the casts,
// which the interpreter and the JIT run for those T; where every T is >= N
// it is rewritten in place; where none is, nothing changes (a remark says
// so). A static token dim is the same test on its value. Run last, after
// tp-split and delay-allreduce (each all_reduce where it sends least).
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"
#include "ir/Builder.h"
#include "ir/Error.h"
#include "ir/Spmd.h"

#include "fmt/format.h"

#include <algorithm>

using namespace moe;

namespace {
class AllReducePrecisionPass : public Pass {
public:
  explicit AllReducePrecisionPass(const PassOptions &o)
      : typeName(o.getString("type", "bf16")), minTokens(o.getInt("min-tokens", 1)) {}
  Statistic numNarrowed{this, "num-narrowed", "all_reduces cast to the narrow type"};
  Statistic numVariants{this, "num-variants", "functions given a variant for T >= min-tokens"};

  /// (ranks + 1) * u for the last function changed: each rank's partial and
  /// the sum are rounded once to the narrow type.
  double numericTolerance() const override { return tolerance; }

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) override {
    tolerance = 0;
    auto type = parseElemType(typeName);
    if (!type || (*type != ElemType::BF16 && *type != ElemType::F16))
      return err("allreduce-precision: type must be bf16 or f16, got '{}'", typeName);
    if (minTokens < 1)
      return err("allreduce-precision: min-tokens must be >= 1, got {}", minTokens);
    if (isVariant(f, ctx.module))
      return false; // narrowed through the function that lists it
    std::vector<Operation *> ars;
    for (auto &op : f.getBody())
      if (op.is(OpKind::AllReduce) && op.getResult()->getType().elem == ElemType::F32)
        ars.push_back(&op);
    if (ars.empty())
      return false;
    if (f.attrs().has("variants")) {
      ctx.diag.opRemark(ars.front(), fmt::format("not narrowed: @{} already has variants",
                                                 f.getName()));
      return false;
    }
    // The token dim, one for the function.
    DimExpr tokens = ars.front()->getResult()->getType().dims.empty()
                         ? DimExpr(1)
                         : ars.front()->getResult()->getType().dims[0];
    for (auto *a : ars)
      if (Refusal why = whyNotNarrow(*a, tokens, f)) {
        ctx.diag.opRemark(a, "not narrowed: " + *why);
        return false;
      }
    // Where T >= N: never, always, or from N on (a variant).
    auto [lo, hi] = tokenRange(tokens, f);
    if (hi < minTokens) {
      ctx.diag.opRemark(ars.front(),
                        fmt::format("not narrowed: {} <= {} < min-tokens = {}", tokens.str(),
                                    hi, minTokens));
      return false;
    }
    tolerance = double(numRanks(f) + 1) * (*type == ElemType::BF16 ? 0x1p-8 : 0x1p-11);
    if (lo >= minTokens)
      return narrow(f, *type);
    std::unique_ptr<Function> v = f.clone();
    v->setName(fmt::format("{}.{}_from_{}", f.getName(), typeName, minTokens));
    std::string sym = tokens.str();
    for (auto &s : v->symbols())
      if (s.name == sym)
        s.lo = minTokens;
    auto narrowed = narrow(*v, *type);
    if (!narrowed)
      return narrowed.takeError();
    f.attrs().set("variants", Attribute::getList({Attribute::getString(v->getName())}));
    ctx.module.add(std::move(v));
    ++numVariants;
    return true;
  }

private:
  std::string typeName;
  int64_t minTokens;
  double tolerance = 0;

  static bool isVariant(const Function &f, const Module &m) {
    for (auto &g : m.functions)
      for (const Function *v : g->getVariants())
        if (v == &f)
          return true;
    return false;
  }

  /// An all_reduce is narrowed when its token dim is the function's: one
  /// declared symbol (T) or a constant (a static capture).
  static Refusal whyNotNarrow(const Operation &a, const DimExpr &tokens, const Function &f) {
    const TensorType &t = a.getResult()->getType();
    DimExpr mine = t.dims.empty() ? DimExpr(1) : t.dims[0];
    if (mine != tokens)
      return fmt::format("its token dim {} is not the other all_reduces' {}", mine.str(),
                         tokens.str());
    if (!tokens.isConstant() && !f.lookupSymbol(tokens.str()))
      return fmt::format("its leading dim {} is not a token symbol", tokens.str());
    if (!tokens.isConstant() && f.attrs().has(tokens.str()))
      return fmt::format("its leading dim {} is rank-dependent", tokens.str());
    return std::nullopt;
  }

  static std::pair<int64_t, int64_t> tokenRange(const DimExpr &tokens, const Function &f) {
    if (auto c = tokens.getConstant())
      return {*c, *c};
    const SymbolDecl *s = f.lookupSymbol(tokens.str());
    return {s->lo, s->hi};
  }

  /// Casts around every f32 all_reduce of `f`.
  llvm::Expected<bool> narrow(Function &f, ElemType type) {
    std::vector<Operation *> ars;
    for (auto &op : f.getBody())
      if (op.is(OpKind::AllReduce) && op.getResult()->getType().elem == ElemType::F32)
        ars.push_back(&op);
    for (Operation *a : ars) {
      Builder b(f);
      b.setInsertionPoint(a);
      b.setLoc(a->getLoc());
      Value *p = a->getOperand(0);
      std::string name = a->getResult()->getName(), t = elemTypeName(type).str();
      AttrDict to;
      to.set("to", Attribute::getIdent(t));
      auto narrowP = b.createValue(OpKind::Cast, {p}, to, p->getName() + "_" + t);
      if (!narrowP)
        return narrowP.takeError();
      auto reduced = b.createValue(OpKind::AllReduce, {*narrowP}, a->attrs(), name + "_" + t);
      if (!reduced)
        return reduced.takeError();
      AttrDict back;
      back.set("to", Attribute::getIdent("f32"));
      auto wide = b.createValue(OpKind::Cast, {*reduced}, back, name + "_f32");
      if (!wide)
        return wide.takeError();
      a->getResult()->replaceAllUsesWith(*wide);
      a->erase();
      (*wide)->setName(name);
      ++numNarrowed;
    }
    return !ars.empty();
  }
};
} // namespace

std::unique_ptr<Pass> moe::createAllReducePrecisionPass(const PassOptions &o) {
  return std::make_unique<AllReducePrecisionPass>(o);
}
