//===- DimExpr.cpp - Symbolic tensor dimensions ---------------------------===//
#include "ir/DimExpr.h"

#include <algorithm>
#include <limits>

using namespace moe;

DimExpr DimExpr::symbol(llvm::StringRef name) {
  DimExpr e;
  e.terms[{{name.str(), 1u}}] = 1;
  return e;
}

// Checked arithmetic: a product or sum that overflows int64 has no value.
static bool mulOk(int64_t &acc, int64_t v) { return !__builtin_mul_overflow(acc, v, &acc); }
static bool addOk(int64_t &acc, int64_t v) { return !__builtin_add_overflow(acc, v, &acc); }

bool DimExpr::isConstant() const {
  return !Overflow && (terms.empty() || (terms.size() == 1 && terms.begin()->first.empty()));
}

std::optional<int64_t> DimExpr::getConstant() const {
  if (Overflow)
    return std::nullopt;
  if (terms.empty())
    return 0;
  if (!isConstant())
    return std::nullopt;
  return terms.begin()->second;
}

bool DimExpr::addTerm(const Monomial &m, int64_t c) {
  if (c == 0)
    return true;
  auto [it, inserted] = terms.try_emplace(m, c);
  if (!inserted) {
    if (!addOk(it->second, c))
      return false;
    if (it->second == 0)
      terms.erase(it);
  }
  return true;
}

DimExpr DimExpr::operator+(const DimExpr &o) const {
  if (Overflow || o.Overflow)
    return overflow();
  DimExpr r = *this;
  for (auto &[m, c] : o.terms)
    if (!r.addTerm(m, c))
      return overflow();
  return r;
}

DimExpr DimExpr::operator-(const DimExpr &o) const {
  if (Overflow || o.Overflow)
    return overflow();
  DimExpr r = *this;
  for (auto &[m, c] : o.terms)
    if (c == std::numeric_limits<int64_t>::min() || !r.addTerm(m, -c))
      return overflow();
  return r;
}

static DimExpr::Monomial mulMonomials(const DimExpr::Monomial &a,
                                      const DimExpr::Monomial &b) {
  std::map<std::string, unsigned> powers;
  for (auto &[s, p] : a)
    powers[s] += p;
  for (auto &[s, p] : b)
    powers[s] += p;
  return DimExpr::Monomial(powers.begin(), powers.end());
}

DimExpr DimExpr::operator*(const DimExpr &o) const {
  if (Overflow || o.Overflow)
    return overflow();
  DimExpr r;
  for (auto &[ma, ca] : terms)
    for (auto &[mb, cb] : o.terms) {
      int64_t c = ca;
      if (!mulOk(c, cb) || !r.addTerm(mulMonomials(ma, mb), c))
        return overflow();
    }
  return r;
}

std::optional<DimExpr> DimExpr::divExact(int64_t d) const {
  if (d == 0 || Overflow)
    return std::nullopt;
  DimExpr r;
  for (auto &[m, c] : terms) {
    // INT64_MIN / -1 does not fit.
    if (d == -1 && c == std::numeric_limits<int64_t>::min())
      return std::nullopt;
    if (c % d != 0)
      return std::nullopt;
    r.terms[m] = c / d;
  }
  return r;
}

std::optional<DimExpr> DimExpr::divExact(const DimExpr &d) const {
  if (auto c = d.getConstant())
    return divExact(*c);
  // Divisor must be a single term c*m; every term of *this must contain m.
  if (Overflow || d.Overflow)
    return std::nullopt;
  if (d.terms.size() != 1)
    return *this == d ? std::optional<DimExpr>(DimExpr(1)) : std::nullopt;
  auto &[dm, dc] = *d.terms.begin();
  DimExpr r;
  for (auto &[m, c] : terms) {
    if ((dc == -1 && c == std::numeric_limits<int64_t>::min()) || c % dc != 0)
      return std::nullopt;
    std::map<std::string, unsigned> powers(m.begin(), m.end());
    for (auto &[s, p] : dm) {
      auto it = powers.find(s);
      if (it == powers.end() || it->second < p)
        return std::nullopt;
      if ((it->second -= p) == 0)
        powers.erase(it);
    }
    if (!r.addTerm(Monomial(powers.begin(), powers.end()), c / dc))
      return std::nullopt;
  }
  return r;
}

bool DimExpr::isMultipleOf(int64_t m) const {
  // Sufficient (and for integer-valued polynomials with integer coefficients,
  // the natural) condition: every coefficient is a multiple of m.
  if (Overflow)
    return false;
  if (m == 0)
    return terms.empty();
  if (m == -1)
    return true;
  for (auto &[mono, c] : terms)
    if (c % m != 0)
      return false;
  return true;
}

std::optional<int64_t> DimExpr::evaluate(const SymbolBindings &b) const {
  if (Overflow)
    return std::nullopt;
  int64_t total = 0;
  for (auto &[m, c] : terms) {
    int64_t v = c;
    for (auto &[s, p] : m) {
      auto it = b.find(s);
      if (it == b.end())
        return std::nullopt;
      for (unsigned i = 0; i < p; ++i)
        if (!mulOk(v, it->second))
          return std::nullopt;
    }
    if (!addOk(total, v))
      return std::nullopt;
  }
  return total;
}

std::optional<std::pair<int64_t, int64_t>>
DimExpr::bounds(const SymbolRanges &r) const {
  // Interval arithmetic, term by term. Symbols are non-negative dims, so a
  // monomial is monotonic in each symbol and its extremes are at the ends.
  // Overflow anywhere means no provable bounds.
  if (Overflow)
    return std::nullopt;
  int64_t lo = 0, hi = 0;
  for (auto &[m, c] : terms) {
    int64_t mlo = 1, mhi = 1;
    for (auto &[s, p] : m) {
      auto it = r.find(s);
      if (it == r.end())
        return std::nullopt;
      for (unsigned i = 0; i < p; ++i)
        if (!mulOk(mlo, it->second.lo) || !mulOk(mhi, it->second.hi))
          return std::nullopt;
    }
    int64_t a = c, b = c;
    if (!mulOk(a, c >= 0 ? mlo : mhi) || !mulOk(b, c >= 0 ? mhi : mlo) || !addOk(lo, a) ||
        !addOk(hi, b))
      return std::nullopt;
  }
  return std::make_pair(lo, hi);
}

DimExpr DimExpr::substitute(llvm::StringRef name, const DimExpr &e) const {
  if (Overflow)
    return *this;
  DimExpr r;
  for (auto &[m, c] : terms) {
    DimExpr t(c);
    for (auto &[s, p] : m) {
      DimExpr f = s == name ? e : symbol(s);
      for (unsigned i = 0; i < p; ++i)
        t = t * f;
    }
    r = r + t;
  }
  return r;
}

void DimExpr::collectSymbols(std::vector<std::string> &out) const {
  for (auto &[m, c] : terms)
    for (auto &[s, p] : m)
      if (std::find(out.begin(), out.end(), s) == out.end())
        out.push_back(s);
}

static unsigned degree(const DimExpr::Monomial &m) {
  unsigned d = 0;
  for (auto &[s, p] : m)
    d += p;
  return d;
}

std::string DimExpr::str() const {
  if (Overflow)
    return "<overflow>";
  if (terms.empty())
    return "0";
  std::vector<std::pair<Monomial, int64_t>> sorted(terms.begin(), terms.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](auto &a, auto &b) {
    unsigned da = degree(a.first), db = degree(b.first);
    if (da != db)
      return da > db;
    return a.first < b.first;
  });
  std::string out;
  for (auto &[m, c] : sorted) {
    uint64_t mag = c < 0 ? 0 - uint64_t(c) : uint64_t(c);
    if (out.empty())
      out += c < 0 ? "-" : "";
    else
      out += c < 0 ? "-" : "+";
    std::string mono;
    for (auto &[s, p] : m)
      for (unsigned i = 0; i < p; ++i)
        mono += (mono.empty() ? "" : "*") + s;
    if (mono.empty())
      out += std::to_string(mag);
    else if (mag == 1)
      out += mono;
    else
      out += std::to_string(mag) + "*" + mono;
  }
  return out;
}

DimExpr moe::numElements(llvm::ArrayRef<DimExpr> dims) {
  DimExpr n(1);
  for (auto &d : dims)
    n = n * d;
  return n;
}
