//===- Attribute.cpp - Operation and argument attributes ------------------===//
#include "ir/Attribute.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace moe;

Attribute Attribute::getDim(const DimExpr &d) {
  if (auto c = d.getConstant())
    return getInt(*c);
  return Attribute(d);
}

Attribute Attribute::getDims(llvm::ArrayRef<DimExpr> dims) {
  std::vector<Attribute> l;
  for (auto &d : dims)
    l.push_back(getDim(d));
  return getList(std::move(l));
}

Attribute Attribute::getInts(llvm::ArrayRef<int64_t> ints) {
  std::vector<Attribute> l;
  for (auto i : ints)
    l.push_back(getInt(i));
  return getList(std::move(l));
}

std::optional<Shape> Attribute::asDims() const {
  if (!isList())
    return std::nullopt;
  Shape s;
  for (auto &a : getList()) {
    if (!a.isDimLike())
      return std::nullopt;
    s.push_back(a.getDim());
  }
  return s;
}

std::optional<std::vector<int64_t>> Attribute::asInts() const {
  if (!isList())
    return std::nullopt;
  std::vector<int64_t> r;
  for (auto &a : getList()) {
    if (!a.isInt())
      return std::nullopt;
    r.push_back(a.getInt());
  }
  return r;
}

std::string moe::formatFloat(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d < 0 ? "-inf" : "inf";
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d)
      break;
  }
  std::string s = buf;
  // Normalise the exponent: e-05 -> e-5, e+20 -> e20.
  auto e = s.find('e');
  if (e != std::string::npos) {
    std::string mant = s.substr(0, e), exp = s.substr(e + 1);
    bool neg = !exp.empty() && exp[0] == '-';
    if (!exp.empty() && (exp[0] == '-' || exp[0] == '+'))
      exp = exp.substr(1);
    while (exp.size() > 1 && exp[0] == '0')
      exp = exp.substr(1);
    if (mant.find('.') == std::string::npos)
      mant += ".0";
    return mant + "e" + (neg ? "-" : "") + exp;
  }
  if (s.find('.') == std::string::npos)
    s += ".0";
  return s;
}

static std::string quote(const std::string &s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      r += '\\';
    if (c == '\n') {
      r += "\\n";
      continue;
    }
    r += c;
  }
  return r + "\"";
}

std::string Attribute::str() const {
  switch (kind()) {
  case Kind::Int:
    return std::to_string(getInt());
  case Kind::Float:
    return formatFloat(std::get<double>(v));
  case Kind::String:
    return quote(getString());
  case Kind::Bool:
    return getBool() ? "true" : "false";
  case Kind::Ident:
    return getIdent();
  case Kind::Dim:
    return std::get<DimExpr>(v).str();
  case Kind::List: {
    std::string s = "[";
    for (auto &a : getList())
      s += (s.size() > 1 ? ", " : "") + a.str();
    return s + "]";
  }
  case Kind::Type:
    return getType().str();
  }
  return "?";
}

const Attribute *AttrDict::get(llvm::StringRef name) const {
  for (auto &[n, a] : entries)
    if (n == name)
      return &a;
  return nullptr;
}

void AttrDict::set(llvm::StringRef name, Attribute a) {
  for (auto &[n, old] : entries)
    if (n == name) {
      old = std::move(a);
      return;
    }
  entries.emplace_back(name.str(), std::move(a));
}

bool AttrDict::erase(llvm::StringRef name) {
  for (auto it = entries.begin(); it != entries.end(); ++it)
    if (it->first == name) {
      entries.erase(it);
      return true;
    }
  return false;
}

std::string AttrDict::str() const {
  if (entries.empty())
    return "";
  std::string s = " {";
  bool first = true;
  for (auto &[n, a] : entries) {
    s += first ? "" : ", ";
    first = false;
    if (a.kind() == Attribute::Kind::Bool && a.getBool())
      s += n;
    else
      s += n + " = " + a.str();
  }
  return s + "}";
}
