//===- TargetDesc.cpp - Target descriptions as data -----------------------===//
//
// The JSON reader is strict: a typo in a target file (`max_row`) must not
// silently leave a kernel unrestricted, so every key is checked, in sorted
// order so that the error for a file is always the same one.
//
//===----------------------------------------------------------------------===//
#include "passes/TargetDesc.h"
#include "ir/Error.h"

#include "fmt/format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace moe;

namespace {

std::string jsonText(const llvm::json::Value &v) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << v;
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

/// Reads one JSON object's keys in sorted order, checking each against the
/// keys the caller knows.
class ObjectReader {
public:
  ObjectReader(const llvm::json::Object &o, llvm::StringRef source, std::string path)
      : obj(o), source(source), path(std::move(path)) {}

  std::string keyPath(llvm::StringRef k) const {
    return path.empty() ? k.str() : path + "." + k.str();
  }
  llvm::Error typeError(llvm::StringRef k, llvm::StringRef want,
                        const llvm::json::Value &v) const {
    return err(fmt::format("{}: '{}' must be {}, got {}", source.str(), keyPath(k), want.str(),
                           jsonText(v)));
  }
  std::vector<std::string> sortedKeys() const {
    std::vector<std::string> keys;
    for (auto &kv : obj)
      keys.push_back(llvm::StringRef(kv.first).str());
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  llvm::Error unknownKey(llvm::StringRef k, llvm::ArrayRef<llvm::StringRef> known,
                         llvm::StringRef what = "key") const {
    std::string list;
    for (auto s : known)
      list += (list.empty() ? "" : ", ") + s.str();
    return err(fmt::format("{}: unknown {} '{}' (expected one of: {})", source.str(), what.str(),
                           keyPath(k), list));
  }
  llvm::Expected<bool> getBool(llvm::StringRef k) const {
    const llvm::json::Value &v = *obj.get(k);
    if (auto b = v.getAsBoolean())
      return *b;
    return typeError(k, "true or false", v);
  }
  llvm::Expected<std::optional<int64_t>> getOptInt(llvm::StringRef k) const {
    const llvm::json::Value &v = *obj.get(k);
    if (v.getAsNull())
      return std::optional<int64_t>();
    // llvm::json converts a double of 2^63 or more to int64 (undefined; a
    // fuzzer found 9223372036854775800.5): only numbers below it go there,
    // and integers stored as such (up to INT64_MAX) are taken as they are.
    std::optional<int64_t> i;
    if (auto d = v.getAsNumber(); d && *d > -0x1p63 && *d < 0x1p63)
      i = v.getAsInteger();
    else if (auto u = v.getAsUINT64(); u && *u <= uint64_t(INT64_MAX))
      i = int64_t(*u);
    if (i && *i >= 0)
      return std::optional<int64_t>(*i);
    return typeError(k, "a non-negative integer or null", v);
  }

  const llvm::json::Object &obj;
  llvm::StringRef source;
  std::string path;
};

llvm::Expected<KernelShapeLimits> parseLimits(const ObjectReader &r) {
  static const llvm::StringRef known[] = {"available", "dynamic_cols", "dynamic_rows",
                                          "max_cols",  "max_rows",     "min_cols",
                                          "min_rows",  "static_rows_only"};
  KernelShapeLimits l;
  for (auto &k : r.sortedKeys()) {
    auto flag = [&](bool &field, bool invert) -> llvm::Error {
      auto b = r.getBool(k);
      if (!b)
        return b.takeError();
      field = invert ? !*b : *b;
      return llvm::Error::success();
    };
    auto bound = [&](std::optional<int64_t> &field) -> llvm::Error {
      auto i = r.getOptInt(k);
      if (!i)
        return i.takeError();
      field = *i;
      return llvm::Error::success();
    };
    llvm::Error e = [&]() -> llvm::Error {
      if (k == "available")
        return flag(l.available, false);
      if (k == "dynamic_rows")
        return flag(l.dynamicRows, false);
      if (k == "static_rows_only")
        return flag(l.dynamicRows, true);
      if (k == "dynamic_cols")
        return flag(l.dynamicCols, false);
      if (k == "max_rows")
        return bound(l.maxRows);
      if (k == "min_rows")
        return bound(l.minRows);
      if (k == "max_cols")
        return bound(l.maxCols);
      if (k == "min_cols")
        return bound(l.minCols);
      return r.unknownKey(k, known);
    }();
    if (e)
      return e;
  }
  const llvm::json::Object &o = r.obj;
  if (o.get("dynamic_rows") && o.get("static_rows_only") &&
      *o.getBoolean("dynamic_rows") == *o.getBoolean("static_rows_only"))
    return err(fmt::format("{}: '{}' and '{}' contradict each other", r.source.str(),
                           r.keyPath("dynamic_rows"), r.keyPath("static_rows_only")));
  return l;
}

/// `rows` or `cols` of `x`, checked against one pair of limits.
std::optional<std::string> checkExtent(llvm::StringRef what, const DimExpr &d, bool dynamicOk,
                                       std::optional<int64_t> lo, std::optional<int64_t> hi,
                                       llvm::StringRef kernel, const SymbolRanges &ranges) {
  std::string k = kernel.str(), w = what.str(), ds = d.str();
  if (!dynamicOk && d.hasSymbols())
    return fmt::format("{} {} are dynamic and the target's fused {} requires static {}", w, ds,
                       k, w);
  if (!lo && !hi)
    return std::nullopt;
  auto b = d.bounds(ranges);
  if (!b)
    return fmt::format("{} {} have no declared bound and the target's fused {} requires {} in "
                       "[{}, {}]",
                       w, ds, k, w, lo ? std::to_string(*lo) : "0",
                       hi ? std::to_string(*hi) : "inf");
  if (hi && b->second > *hi)
    return d.hasSymbols()
               ? fmt::format("{} {} can be up to {} and the target's fused {} allows at most {}",
                             w, ds, b->second, k, *hi)
               : fmt::format("{} {} are more than the target's fused {} allows ({})", w, ds, k,
                             *hi);
  if (lo && b->first < *lo)
    return d.hasSymbols()
               ? fmt::format("{} {} can be as few as {} and the target's fused {} needs at "
                             "least {}",
                             w, ds, b->first, k, *lo)
               : fmt::format("{} {} are fewer than the target's fused {} needs ({})", w, ds, k,
                             *lo);
  return std::nullopt;
}

} // namespace

const TargetDesc &TargetDesc::cpu() {
  static const TargetDesc t("cpu");
  return t;
}

llvm::ArrayRef<llvm::StringRef> TargetDesc::knownKernels() {
  static const llvm::StringRef names[] = {"rms_norm"};
  return names;
}

KernelShapeLimits TargetDesc::getLimits(llvm::StringRef kernel) const {
  auto it = kernels.find(kernel);
  return it == kernels.end() ? KernelShapeLimits() : it->second;
}

llvm::Expected<TargetDesc> TargetDesc::parse(llvm::StringRef json, llvm::StringRef source,
                                             llvm::StringRef defaultName) {
  auto v = llvm::json::parse(json);
  if (!v)
    return err(fmt::format("{}: invalid JSON: {}", source.str(), llvm::toString(v.takeError())));
  const llvm::json::Object *top = v->getAsObject();
  if (!top)
    return err(fmt::format("{}: a target description must be a JSON object, got {}",
                           source.str(), jsonText(*v)));
  ObjectReader r(*top, source, "");
  TargetDesc t(defaultName.str());
  static const llvm::StringRef topKeys[] = {"kernels", "name"};
  for (auto &k : r.sortedKeys()) {
    const llvm::json::Value &val = *top->get(k);
    if (k == "name") {
      auto s = val.getAsString();
      if (!s || s->empty())
        return r.typeError(k, "a non-empty string", val);
      t.name = s->str();
    } else if (k == "kernels") {
      const llvm::json::Object *ks = val.getAsObject();
      if (!ks)
        return r.typeError(k, "an object mapping kernel names to their limits", val);
      ObjectReader kr(*ks, source, "kernels");
      for (auto &kn : kr.sortedKeys()) {
        if (!llvm::is_contained(knownKernels(), kn))
          return kr.unknownKey(kn, knownKernels(), "kernel");
        const llvm::json::Value &kv = *ks->get(kn);
        const llvm::json::Object *ko = kv.getAsObject();
        if (!ko)
          return kr.typeError(kn, "an object of shape-class limits", kv);
        auto l = parseLimits(ObjectReader(*ko, source, kr.keyPath(kn)));
        if (!l)
          return l.takeError();
        t.kernels[kn] = *l;
      }
    } else {
      return r.unknownKey(k, topKeys);
    }
  }
  return t;
}

llvm::Expected<TargetDesc> TargetDesc::load(llvm::StringRef path) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return err(fmt::format("cannot read target description '{}': {}", path.str(),
                           buf.getError().message()));
  return parse((*buf)->getBuffer(), path, llvm::sys::path::stem(path));
}

std::optional<std::string> TargetDesc::whyInvalid(llvm::StringRef kernel, const TensorType &x,
                                                  const SymbolRanges &ranges) const {
  KernelShapeLimits l = getLimits(kernel);
  if (!l.available)
    return fmt::format("the target has no fused {} kernel", kernel.str());
  if (x.rank() < 1)
    return fmt::format("the input of {} has rank 0", kernel.str());
  DimExpr rows = numElements(llvm::ArrayRef<DimExpr>(x.dims).drop_back());
  const DimExpr &cols = x.dims.back();
  if (auto why = checkExtent("rows", rows, l.dynamicRows, l.minRows, l.maxRows, kernel, ranges))
    return why;
  return checkExtent("cols", cols, l.dynamicCols, l.minCols, l.maxCols, kernel, ranges);
}
