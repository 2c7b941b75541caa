//===- DimExpr.h - Symbolic tensor dimensions -------------------*- C++ -*-===//
//
// A dim is an integer polynomial over named symbols (`T`, `8*T`, `T+1`). The
// polynomial is kept in a canonical form (a map from sorted monomials to
// non-zero coefficients), so two dims are equal exactly when they are
// structurally equal: `2*T` == `T+T`. Named symbols are what lets a pass prove
// that two dynamic dims are the same, which an anonymous `?` cannot.
//
// Arithmetic is checked: a result whose coefficients would overflow int64 is
// an "overflowed" dim (sticky through further arithmetic, equal to nothing
// but itself, no value); the parser and the verifier report it where it
// arises, so no size computation downstream runs on a wrapped value.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moe {

/// Values bound to symbols for one evaluation (e.g. T = 7).
using SymbolBindings = llvm::StringMap<int64_t>;

/// The declared range of each symbol, inclusive.
struct SymbolRange {
  int64_t lo = 0, hi = 0;
};
using SymbolRanges = llvm::StringMap<SymbolRange>;

class DimExpr {
public:
  /// A product of symbols raised to positive powers, sorted by name.
  using Monomial = std::vector<std::pair<std::string, unsigned>>;

  DimExpr() = default;
  DimExpr(int64_t c) {
    if (c != 0)
      terms[{}] = c;
  }
  static DimExpr symbol(llvm::StringRef name);

  /// True when some arithmetic producing this dim overflowed int64.
  bool overflowed() const { return Overflow; }
  static DimExpr overflow() {
    DimExpr e;
    e.Overflow = true;
    return e;
  }

  bool isConstant() const;
  std::optional<int64_t> getConstant() const;
  bool isConstant(int64_t v) const { return getConstant() == v; }

  DimExpr operator+(const DimExpr &o) const;
  DimExpr operator-(const DimExpr &o) const;
  DimExpr operator*(const DimExpr &o) const;
  DimExpr operator-() const { return DimExpr(0) - *this; }
  bool operator==(const DimExpr &o) const {
    return Overflow == o.Overflow && terms == o.terms;
  }
  bool operator!=(const DimExpr &o) const { return !(*this == o); }
  bool operator<(const DimExpr &o) const {
    return Overflow != o.Overflow ? Overflow < o.Overflow : terms < o.terms;
  }

  /// Exact division by a non-zero constant, if every coefficient divides.
  std::optional<DimExpr> divExact(int64_t d) const;
  /// Exact division by another polynomial whose quotient is a monomial
  /// multiple (covers `8*T / T`, `T*64 / 64`); nullopt otherwise.
  std::optional<DimExpr> divExact(const DimExpr &d) const;
  /// True when the value is a multiple of `m` for every symbol value.
  bool isMultipleOf(int64_t m) const;

  /// Value under the bindings; nullopt if a symbol is unbound.
  std::optional<int64_t> evaluate(const SymbolBindings &b) const;
  /// Conservative bounds over the declared ranges (interval arithmetic);
  /// nullopt if a symbol has no declared range.
  std::optional<std::pair<int64_t, int64_t>> bounds(const SymbolRanges &r) const;

  /// Replace symbol `name` by `e` everywhere.
  DimExpr substitute(llvm::StringRef name, const DimExpr &e) const;

  void collectSymbols(std::vector<std::string> &out) const;
  bool hasSymbols() const { return !isConstant(); }

  /// Canonical text: terms by descending degree then name, constant last:
  /// `T`, `8*T`, `T+1`, `T*U-2`.
  std::string str() const;

  const std::map<Monomial, int64_t> &getTerms() const { return terms; }

private:
  std::map<Monomial, int64_t> terms;
  bool Overflow = false;
  /// Adds c*m; false (and nothing added) on int64 overflow.
  [[nodiscard]] bool addTerm(const Monomial &m, int64_t c);
};

using Shape = std::vector<DimExpr>;

/// Product of all dims (the element count).
DimExpr numElements(llvm::ArrayRef<DimExpr> dims);

} // namespace moe
