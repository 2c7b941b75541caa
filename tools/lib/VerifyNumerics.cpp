//===- VerifyNumerics.cpp - Numeric translation validation ----------------===//
#include "tools/lib/VerifyNumerics.h"
#include "ir/Error.h"
#include "ir/Printer.h"
#include "ir/Spmd.h"
#include "runtime/Binder.h"
#include "runtime/Compare.h"
#include "runtime/InProcessRanks.h"
#include "runtime/TensorCut.h"

#include "fmt/format.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

using namespace moe;

namespace {

bool isOddPrime(int64_t v) {
  if (v < 3 || v % 2 == 0)
    return false;
  for (int64_t d = 3; d * d <= v; d += 2)
    if (v % d == 0)
      return false;
  return true;
}

/// The symbol values a function is checked at: 1, 7 and the range's ends
/// when small, inside the declared range; cartesian over the symbols.
std::vector<SymbolBindings> symbolCases(const Function &f) {
  return symbolCombinations(
      f,
      [](const SymbolDecl &s) {
        std::vector<int64_t> vals;
        for (int64_t v : {s.lo, int64_t(1), int64_t(7), s.hi <= 64 ? s.hi : s.lo})
          if (v >= s.lo && v <= s.hi && !llvm::is_contained(vals, v))
            vals.push_back(v);
        // An odd prime in range even when 7 is not (e.g. T in [8, 64]).
        if (!llvm::any_of(vals, isOddPrime))
          for (int64_t v = std::max<int64_t>(s.lo, 3); v <= s.hi && v <= s.lo + 64; ++v)
            if (isOddPrime(v)) {
              vals.push_back(v);
              break;
            }
        return vals;
      },
      12);
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
    // A rewrite that reassociates a sum may round one element of a narrowing
    // cast the other way (Compare.h's castTolerance).
    passRtol = std::max(p.numericTolerance(), castTolerance(*st.before));
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
    for (auto &sym : introducedSymbols(*st.before, f))
      if (auto e = checkInChunks(*st.before, f, sym))
        return e;
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
  /// The current pass's numericTolerance() or castTolerance, if larger.
  double passRtol = 0;

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

  /// A symbol the pass gave to dims that were static before (dyn-dims): the
  /// argument axes it stands for and the value they were captured at.
  struct Introduced {
    std::string sym;
    int64_t captured = 0;
    std::vector<std::pair<std::string, int64_t>> axes; ///< (argument name, axis)
  };

  static std::vector<Introduced> introducedSymbols(const Function &before,
                                                   const Function &after) {
    std::vector<Introduced> out;
    for (auto &s : after.symbols()) {
      if (before.lookupSymbol(s.name) || after.attrs().has(s.name))
        continue;
      Introduced in;
      in.sym = s.name;
      for (unsigned k = 0; k < after.getNumArguments(); ++k) {
        const Value *a = after.getArgument(k), *o = before.lookupArgument(a->getName());
        if (!o || o->getType().rank() != a->getType().rank())
          continue;
        for (int64_t d = 0; d < a->getType().rank(); ++d)
          if (a->getType().dims[d] == DimExpr::symbol(s.name))
            if (auto c = o->getType().dims[d].getConstant()) {
              in.captured = *c;
              in.axes.push_back({a->getName(), d});
            }
      }
      if (!in.axes.empty())
        out.push_back(std::move(in));
    }
    return out;
  }

  /// `t` with the rows of `axis` in the order `perm` (a row index per row).
  static llvm::Expected<Tensor> permuteRows(const Tensor &t, int64_t axis,
                                            llvm::ArrayRef<int64_t> perm) {
    std::vector<Tensor> rows;
    for (int64_t r : perm) {
      auto row = sliceAxis(t, axis, r, r + 1);
      if (!row)
        return row.takeError();
      rows.push_back(std::move(*row));
    }
    std::vector<const Tensor *> ptrs;
    for (auto &r : rows)
      ptrs.push_back(&r);
    return concatAxis(ptrs, axis);
  }

  /// Runs `f` under `b` with the token arguments (`in.axes`) taken from
  /// `tokens` (by argument name) and every other argument random.
  llvm::Expected<std::vector<Tensor>> runWith(const Function &f, const SymbolBindings &b,
                                              const llvm::StringMap<Tensor> &tokens) {
    ArgSource random = randomSource(opts.seed);
    ArgSource src = [&](const Value &arg, ElemType elem,
                        llvm::ArrayRef<int64_t> shape) -> llvm::Expected<Tensor> {
      auto it = tokens.find(arg.getName());
      return it != tokens.end() ? it->second : random(arg, elem, shape);
    };
    Binder binder(f, src, b);
    auto out = interpretOnRanks(f, binder);
    if (!out)
      return out.takeError();
    return std::move((*out)[0]);
  }

  /// Random token arguments of `f` under `b`, for the axes of `in`.
  llvm::Expected<llvm::StringMap<Tensor>> tokenInputs(const Function &f, const Introduced &in,
                                                      const SymbolBindings &b) {
    llvm::StringMap<Tensor> out;
    ArgSource random = randomSource(opts.seed);
    for (auto &[name, axis] : in.axes) {
      const Value *a = f.lookupArgument(name);
      auto shape = a->getType().evaluate(b);
      if (!shape)
        return err(fmt::format("cannot evaluate the type of %{}", a->getName()));
      auto t = random(*a, a->getType().elem, *shape);
      if (!t)
        return t.takeError();
      out[a->getName()] = std::move(*t);
    }
    return out;
  }

  /// The one axis of each result of `after` that is `sym` (none where a
  /// result does not have exactly one such axis and no other use of it).
  static std::optional<std::vector<int64_t>> resultTokenAxes(const Function &after,
                                                             llvm::StringRef sym) {
    std::vector<int64_t> axes;
    for (auto &t : after.resultTypes()) {
      int64_t found = -1;
      for (int64_t d = 0; d < t.rank(); ++d) {
        std::vector<std::string> syms;
        t.dims[d].collectSymbols(syms);
        if (t.dims[d] == DimExpr::symbol(sym)) {
          if (found >= 0)
            return std::nullopt;
          found = d;
        } else if (std::find(syms.begin(), syms.end(), sym.str()) != syms.end()) {
          return std::nullopt;
        }
      }
      if (found < 0)
        return std::nullopt;
      axes.push_back(found);
    }
    return axes;
  }

  /// For a symbol a pass introduced (dyn-dims), runs the function after the
  /// pass at token counts other than the captured one and compares it with
  /// the function before the pass run on the same tokens in chunks of the
  /// captured size (the last chunk padded with the first tokens) -- where
  /// the function is token-wise, which is checked first by permuting tokens.
  llvm::Error checkInChunks(const Function &before, const Function &after,
                            const Introduced &in) {
    int64_t c = in.captured;
    auto skip = [&](const std::string &why) {
      llvm::errs() << fmt::format("--verify-numerics: note: @{} is not checked at {} other "
                                  "than {}: {}\n", after.getName(), in.sym, c, why);
      return llvm::Error::success();
    };
    // The symbols other than `in.sym`: as the first case of the checks above.
    SymbolBindings base = symbolCases(before).front();
    SymbolBindings atC = matchBindings(before, after, base);
    atC[in.sym] = c;
    auto afterAxes = resultTokenAxes(after, in.sym);

    // 1. Token-wise? Permuting the tokens must permute the rows of one axis
    //    of each result alike: that axis is the result's token axis. Tested
    //    on the function before the pass; when it was captured at one token,
    //    on the function after it at 5 tokens, along its axes `in.sym`.
    std::vector<int64_t> axes;
    {
      const Function &g = c >= 2 ? before : after;
      SymbolBindings gb = c >= 2 ? base : atC;
      int64_t n = c >= 2 ? c : 5;
      if (c < 2) {
        if (!afterAxes)
          return skip(fmt::format("it was captured at 1 and not every result has exactly one "
                                  "axis {} after the pass", in.sym));
        gb[in.sym] = n;
      }
      std::vector<int64_t> perm; // a rotation by one token
      for (int64_t r = 0; r < n; ++r)
        perm.push_back((r + 1) % n);
      auto plain = tokenInputs(g, in, gb);
      if (!plain)
        return plain.takeError();
      llvm::StringMap<Tensor> shuffled;
      for (auto &[name, axis] : in.axes) {
        auto p = permuteRows((*plain)[name], axis, perm);
        if (!p)
          return p.takeError();
        shuffled[name] = std::move(*p);
      }
      auto r0 = runWith(g, gb, *plain);
      auto r1 = runWith(g, gb, shuffled);
      if (!r0 || !r1) {
        llvm::consumeError(r0.takeError());
        llvm::consumeError(r1.takeError());
        return skip("it does not run with its tokens permuted");
      }
      for (size_t i = 0; i < r0->size(); ++i) {
        std::vector<int64_t> cands;
        if (c < 2)
          cands.push_back((*afterAxes)[i]);
        else // the after-pass token axis first, where it has one
          for (int64_t a = -1; a < (*r0)[i].rank(); ++a)
            if (a == -1 ? afterAxes && (*r0)[i].shape[(*afterAxes)[i]] == n
                        : (*r0)[i].shape[a] == n)
              cands.push_back(a == -1 ? (*afterAxes)[i] : a);
        int64_t found = -1;
        for (int64_t a : cands) {
          auto want = permuteRows((*r0)[i], a, perm);
          if (!want)
            return want.takeError();
          auto d = compareTensors((*r1)[i], *want);
          if (!d)
            return d.takeError();
          if (d->within(toleranceFor(want->elem, opts.rtol))) {
            found = a;
            break;
          }
        }
        if (found < 0)
          return skip(fmt::format("it is not token-wise (permuting the tokens changes result "
                                  "#{} by more than the order of the rows of one axis)", i));
        axes.push_back(found);
      }
      // Permuting alone does not see a mix over all tokens (x - mean(x)):
      // token 0 made a copy of token 1 must leave the other rows alone.
      std::vector<int64_t> copy{1};
      for (int64_t r = 1; r < n; ++r)
        copy.push_back(r);
      llvm::StringMap<Tensor> changed;
      for (auto &[name, axis] : in.axes) {
        auto p = permuteRows((*plain)[name], axis, copy);
        if (!p)
          return p.takeError();
        changed[name] = std::move(*p);
      }
      auto r2 = runWith(g, gb, changed);
      if (!r2) {
        llvm::consumeError(r2.takeError());
        return skip("it does not run with one token changed");
      }
      for (size_t i = 0; i < r0->size(); ++i) {
        auto a = sliceAxis((*r0)[i], axes[i], 1, n), b = sliceAxis((*r2)[i], axes[i], 1, n);
        if (!a || !b)
          return llvm::joinErrors(a.takeError(), b.takeError());
        auto d = compareTensors(*b, *a);
        if (!d)
          return d.takeError();
        if (!d->within(toleranceFor(a->elem, opts.rtol)))
          return skip(fmt::format("it is not token-wise (changing one token changes other "
                                  "rows of result #{})", i));
      }
    }
    // The token axis of every result must be `in.sym` after the pass, and
    // the only dim that depends on it.
    for (size_t i = 0; i < axes.size(); ++i)
      if (!afterAxes || (*afterAxes)[i] != axes[i])
        return err(fmt::format("--verify-numerics: result #{} is {} after the pass, but its "
                               "token axis (the rows permuting the tokens permutes) is axis {}: "
                               "it should be {} and the only dim that depends on {}", i,
                               after.resultTypes()[i].str(), axes[i], in.sym, in.sym));

    // 2. At other token counts, against the captured function in chunks.
    auto range = llvm::find_if(after.symbols(), [&](auto &s) { return s.name == in.sym; });
    for (int64_t t : {int64_t(1), int64_t(5), int64_t(13), 2 * c + 3}) {
      if (t == c || t < range->lo || t > range->hi)
        continue;
      SymbolBindings ab = atC;
      ab[in.sym] = t;
      auto tokens = tokenInputs(after, in, ab);
      if (!tokens)
        return tokens.takeError();
      auto got = runWith(after, ab, *tokens);
      if (!got)
        return err(fmt::format("--verify-numerics: after the pass, @{} fails at {}: {}",
                               after.getName(), describe(ab), llvm::toString(got.takeError())));
      std::vector<std::vector<Tensor>> parts(got->size());
      for (int64_t start = 0; start < t; start += c) {
        std::vector<int64_t> rows;
        for (int64_t r = start; r < start + c; ++r)
          rows.push_back(r < t ? r : (r - t) % t); // padding: the first tokens again
        llvm::StringMap<Tensor> chunk;
        for (auto &[name, axis] : in.axes) {
          auto p = permuteRows((*tokens)[name], axis, rows);
          if (!p)
            return p.takeError();
          chunk[name] = std::move(*p);
        }
        auto ref = runWith(before, base, chunk);
        if (!ref)
          return err(fmt::format("--verify-numerics: the function before the pass does not "
                                 "run on a chunk of {} tokens: {}", c,
                                 llvm::toString(ref.takeError())));
        for (size_t i = 0; i < ref->size(); ++i) {
          auto keep = sliceAxis((*ref)[i], axes[i], 0, std::min(c, t - start));
          if (!keep)
            return keep.takeError();
          parts[i].push_back(std::move(*keep));
        }
      }
      for (size_t i = 0; i < parts.size(); ++i) {
        std::vector<const Tensor *> ptrs;
        for (auto &p : parts[i])
          ptrs.push_back(&p);
        auto ref = concatAxis(ptrs, axes[i]);
        if (!ref)
          return ref.takeError();
        auto d = compareTensors((*got)[i], *ref);
        std::string what = fmt::format("result #{} at {} against the function before the pass "
                                       "run on the same tokens in chunks of {}", i,
                                       describe(ab), c);
        if (!d)
          return err(fmt::format("--verify-numerics: {}: {}", what,
                                 llvm::toString(d.takeError())));
        double tol = std::max(toleranceFor(ref->elem, opts.rtol), passRtol);
        if (!d->within(tol))
          return err(fmt::format("--verify-numerics: {} differs: max abs error / max(max "
                                 "|expected|, 1) = {:.3g} > tolerance {:.1g}", what, d->error,
                                 tol));
      }
    }
    return llvm::Error::success();
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

std::vector<SymbolBindings>
moe::symbolCombinations(const Function &f,
                        llvm::function_ref<std::vector<int64_t>(const SymbolDecl &)> valuesOf,
                        size_t limit) {
  std::vector<SymbolBindings> cases{{}};
  for (auto &s : f.symbols()) {
    if (f.attrs().has(s.name))
      continue; // rank-dependent: bound per rank
    std::vector<int64_t> vals = valuesOf(s);
    std::vector<SymbolBindings> next;
    for (auto &c : cases)
      for (int64_t v : vals)
        if (next.size() < limit) {
          SymbolBindings b = c;
          b[s.name] = v;
          next.push_back(std::move(b));
        }
    cases = std::move(next);
  }
  return cases;
}
