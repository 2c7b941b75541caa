//===- RunArgs.cpp - moe-run's symbols and argument sources ---------------===//
//
// See RunArgs.h.
//
//===----------------------------------------------------------------------===//
#include "tools/lib/RunArgs.h"
#include "ir/Error.h"

#include "io/Gguf.h"
#include "runtime/GgufSource.h"
#include "runtime/Random.h"

#include "fmt/format.h"

using namespace moe;

/// Parses NAME=VALUE lists into a map, rejecting duplicates.
static llvm::Expected<llvm::StringMap<std::string>> parsePairs(llvm::ArrayRef<std::string> l,
                                                               const char *flag) {
  llvm::StringMap<std::string> m;
  for (auto &s : l) {
    auto [k, v] = llvm::StringRef(s).split('=');
    if (k.empty() || v.empty() || !llvm::StringRef(s).contains('='))
      return err(fmt::format("--{} expects NAME=VALUE, got '{}'", flag, s));
    k.consume_front("%");
    if (m.count(k))
      return err(fmt::format("--{} {} given twice", flag, k.str()));
    m[k] = v.str();
  }
  return m;
}

llvm::Expected<SymbolBindings> moe::bindSymbols(const Function &f,
                                               llvm::ArrayRef<std::string> syms) {
  auto pairs = parsePairs(syms, "sym");
  if (!pairs)
    return pairs.takeError();
  SymbolBindings b;
  for (auto &e : *pairs) {
    const SymbolDecl *s = f.lookupSymbol(e.getKey());
    if (!s)
      return err(fmt::format("--sym {}: @{} has no symbol '{}'", e.getKey().str(), f.getName(),
                             e.getKey().str()));
    if (f.attrs().has(s->name))
      return err(fmt::format("--sym {}: '{}' is rank-dependent and bound per rank",
                             e.getKey().str(), s->name));
    int64_t v;
    if (llvm::StringRef(e.getValue()).getAsInteger(10, v))
      return err(fmt::format("--sym {}={}: not an integer", s->name, e.getValue()));
    if (v < s->lo || v > s->hi)
      return err(fmt::format("--sym {}={}: outside the symbol's range [{}, {}]", s->name, v,
                             s->lo, s->hi));
    b[s->name] = v;
  }
  for (auto &s : f.symbols())
    if (!b.count(s.name) && !f.attrs().has(s.name))
      return err(fmt::format("symbol '{}' of @{} is not bound: give --sym {}=N (range [{}, "
                             "{}])", s.name, f.getName(), s.name, s.lo, s.hi));
  return b;
}

llvm::Expected<Sources> moe::makeSource(const Function &f, const ArgFlags &flags) {
  auto inputs = parsePairs(flags.inputs, "input");
  if (!inputs)
    return inputs.takeError();
  auto params = parsePairs(flags.params, "param");
  if (!params)
    return params.takeError();
  auto files = std::make_shared<llvm::StringMap<std::string>>();
  for (auto [map, wantParam, flag] : {std::tuple{&*inputs, false, "input"},
                                      std::tuple{&*params, true, "param"}})
    for (auto &e : *map) {
      const Value *a = f.lookupArgument(e.getKey());
      if (!a) {
        std::string names;
        for (auto *x : f.getArguments())
          names += (names.empty() ? "" : ", ") + x->getName();
        return err(fmt::format("--{} {}: @{} has no argument '{}' (arguments: {})", flag,
                               e.getKey().str(), f.getName(), e.getKey().str(), names));
      }
      if (a->isParam() != wantParam)
        return err(fmt::format("--{} {}: '{}' is {}; use --{}", flag, e.getKey().str(),
                               e.getKey().str(), wantParam ? "an input" : "a param",
                               wantParam ? "input" : "param"));
      if (a->argAttrs().has("derive"))
        return err(fmt::format("--param {}: this param is derived by a pass from other "
                               "params; give those instead", e.getKey().str()));
      (*files)[e.getKey()] = e.getValue();
    }
  ArgSource rest = randomSource(flags.seed);
  InPlaceSource inPlace;
  ReleaseFn release;
  if (!flags.weights.empty()) {
    auto w = gguf::GgufFile::open(flags.weights);
    if (!w)
      return w.takeError();
    std::shared_ptr<const gguf::GgufFile> file(std::move(*w));
    rest = ggufSource(file, rest);
    InPlaceSource mapped = ggufInPlaceSource(file);
    release = [file](const void *p, size_t n) { file->releasePages(p, n); };
    inPlace = [files, mapped](const Value &arg, ElemType elem,
                              llvm::ArrayRef<int64_t> shape) -> llvm::Expected<const void *> {
      if (files->count(arg.getName())) // --param FILE wins over --weights
        return nullptr;
      return mapped(arg, elem, shape);
    };
  }
  ArgSource source([files, rest](const Value &arg, ElemType elem,
                                 llvm::ArrayRef<int64_t> shape) -> llvm::Expected<Tensor> {
    auto it = files->find(arg.getName());
    if (it == files->end())
      return rest(arg, elem, shape);
    auto t = Tensor::load(it->second, elem);
    if (!t)
      return t.takeError();
    if (llvm::ArrayRef<int64_t>(t->shape) != shape)
      return err(fmt::format("{}: shape {} does not match %{}, which needs {}{}", it->second,
                             t->shapeStr(), arg.getName(), formatShape(shape),
                             arg.isParam() ? " (params are given whole)" : ""));
    return t;
  });
  return Sources{std::move(source), std::move(inPlace), std::move(release)};
}

