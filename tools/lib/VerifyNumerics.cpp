//===- VerifyNumerics.cpp - Numeric translation validation ----------------===//
#include "tools/lib/VerifyNumerics.h"
#include "ir/Error.h"
#include "ir/Printer.h"
#include "ir/Spmd.h"
#include "runtime/Binder.h"
#include "runtime/Compare.h"
#include "runtime/InProcessRanks.h"

#include "fmt/format.h"
#include "llvm/ADT/StringMap.h"

using namespace moe;

namespace {

/// The symbol values a function is checked at: 1, 7 and the range's ends
/// when small, inside the declared range; cartesian over the symbols.
std::vector<SymbolBindings> symbolCases(const Function &f) {
  std::vector<SymbolBindings> cases{{}};
  for (auto &s : f.symbols()) {
    if (f.attrs().has(s.name))
      continue; // rank-dependent: bound per rank
    std::vector<int64_t> vals;
    for (int64_t v : {s.lo, int64_t(1), int64_t(7), s.hi <= 64 ? s.hi : s.lo})
      if (v >= s.lo && v <= s.hi && std::find(vals.begin(), vals.end(), v) == vals.end())
        vals.push_back(v);
    std::vector<SymbolBindings> next;
    for (auto &c : cases)
      for (int64_t v : vals) {
        SymbolBindings b = c;
        b[s.name] = v;
        next.push_back(b);
      }
    cases = std::move(next);
    if (cases.size() > 12)
      cases.resize(12);
  }
  return cases;
}

std::string describe(const SymbolBindings &b) {
  std::vector<std::string> kv;
  for (auto &e : b)
    kv.push_back(fmt::format("{}={}", e.getKey().str(), e.getValue()));
  std::sort(kv.begin(), kv.end());
  std::string s;
  for (auto &x : kv)
    s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "no symbols" : s;
}

/// Bindings for `after` equivalent to `before`'s: the same symbols, plus any
/// symbol `after` introduced for a dim that `before` had static (dyn-dims).
SymbolBindings matchBindings(const Function &before, const Function &after,
                             const SymbolBindings &b) {
  SymbolBindings r;
  for (auto &s : after.symbols())
    if (b.count(s.name))
      r[s.name] = b.lookup(s.name);
  for (auto *a : after.getArguments()) {
    Value *o = before.lookupArgument(a->getName());
    if (!o || o->getType().rank() != a->getType().rank())
      continue;
    for (int64_t k = 0; k < a->getType().rank(); ++k) {
      std::vector<std::string> syms;
      a->getType().dims[k].collectSymbols(syms);
      auto c = o->getType().dims[k].evaluate(b);
      if (syms.size() == 1 && c && !r.count(syms[0]) && !after.attrs().has(syms[0]) &&
          a->getType().dims[k] == DimExpr::symbol(syms[0]))
        r[syms[0]] = *c;
    }
  }
  return r;
}

class VerifyNumerics : public PassInstrumentation {
public:
  explicit VerifyNumerics(NumericsOptions o) : opts(o) {}

  void beforePass(const Pass &, const Function &f) override {
    auto &st = state[f.getName()];
    if (!st.before) {
      st.before = f.clone();
      st.text = toString(f);
    }
  }

  llvm::Error afterPass(const Pass &p, const Function &f) override {
    auto &st = state[f.getName()];
    std::string text = toString(f);
    if (text == st.text)
      return llvm::Error::success();
    passRtol = p.numericTolerance();
    for (auto &b : symbolCases(*st.before)) {
      auto ref = run(*st.before, b);
      if (!ref)
        return err(fmt::format("--verify-numerics: the function before the pass does not "
                               "run at {}: {}", describe(b), llvm::toString(ref.takeError())));
      SymbolBindings ab = matchBindings(*st.before, f, b);
      auto got = run(f, ab);
      if (!got)
        return err(fmt::format("--verify-numerics: after the pass, @{} fails at {}: {}",
                               f.getName(), describe(ab), llvm::toString(got.takeError())));
      if (auto e = compare(*ref, *got, b))
        return e;
    }
    st.before = f.clone();
    st.text = text;
    return llvm::Error::success();
  }

private:
  struct State {
    std::unique_ptr<Function> before;
    std::string text;
  };
  NumericsOptions opts;
  llvm::StringMap<State> state;
  double passRtol = 0; ///< the current pass's numericTolerance(), if larger

  /// Rank 0's results, after checking all ranks agree.
  llvm::Expected<std::vector<Tensor>> run(const Function &f, const SymbolBindings &b) {
    Binder binder(f, randomSource(opts.seed), b);
    auto out = interpretOnRanks(f, binder);
    if (!out)
      return out.takeError();
    for (size_t r = 1; r < out->size(); ++r)
      for (size_t i = 0; i < (*out)[0].size(); ++i) {
        auto d = compareTensors((*out)[r][i], (*out)[0][i]);
        if (!d)
          return d.takeError();
        if (d->numDiffer > 0)
          return err(fmt::format("result #{} differs between rank 0 and rank {} (error {:.3g}): "
                                 "it is not replicated", i, r, d->error));
      }
    return std::move((*out)[0]);
  }

  llvm::Error compare(const std::vector<Tensor> &ref, const std::vector<Tensor> &got,
                      const SymbolBindings &b) {
    if (ref.size() != got.size())
      return err(fmt::format("--verify-numerics: {} results before, {} after", ref.size(),
                             got.size()));
    for (size_t i = 0; i < ref.size(); ++i) {
      auto d = compareTensors(got[i], ref[i]);
      if (!d)
        return err(fmt::format("--verify-numerics: result #{} at {}: {}", i, describe(b),
                               llvm::toString(d.takeError())));
      double tol = std::max(toleranceFor(ref[i].elem, opts.rtol), passRtol);
      if (!d->within(tol))
        return err(fmt::format("--verify-numerics: result #{} at {} differs: max abs error / "
                               "max(max |expected|, 1) = {:.3g} > tolerance {:.1g}",
                               i, describe(b), d->error, tol));
    }
    return llvm::Error::success();
  }
};
} // namespace

std::unique_ptr<PassInstrumentation> moe::createVerifyNumerics(NumericsOptions o) {
  return std::make_unique<VerifyNumerics>(o);
}
