//===- PassManager.cpp - The registry, pipeline parsing, the manager ------===//
#include "passes/Pass.h"
#include "ir/Error.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include "fmt/format.h"
#include <chrono>

using namespace moe;

Statistic::Statistic(Pass *owner, const char *name, const char *desc)
    : name(name), desc(desc) {
  owner->stats.push_back(this);
}

int64_t PassOptions::getInt(llvm::StringRef n, int64_t dflt) const {
  auto it = values.find(n);
  int64_t v;
  if (it == values.end() || llvm::StringRef(it->second).getAsInteger(10, v))
    return dflt;
  return v;
}

bool PassOptions::getBool(llvm::StringRef n, bool dflt) const {
  auto it = values.find(n);
  if (it == values.end())
    return dflt;
  return it->second == "true" || it->second == "1";
}

std::string PassOptions::getString(llvm::StringRef n, llvm::StringRef dflt) const {
  auto it = values.find(n);
  return it == values.end() ? dflt.str() : it->second;
}

std::string Pass::describe() const {
  if (options.values.empty())
    return name;
  std::vector<std::string> kv;
  for (auto &[k, v] : options.entries)
    kv.push_back(k + "=" + v);
  std::sort(kv.begin(), kv.end());
  std::string s = name + "{";
  for (size_t i = 0; i < kv.size(); ++i)
    s += (i ? "," : "") + kv[i];
  return s + "}";
}

static std::vector<PassOptionSpec> parseOptionSpecs(llvm::StringRef text) {
  std::vector<PassOptionSpec> out;
  llvm::SmallVector<llvm::StringRef> parts;
  text.split(parts, ';', -1, false);
  for (auto p : parts) {
    PassOptionSpec s;
    auto [nk, rest] = p.trim().split('=');
    auto [n, k] = nk.split(':');
    auto [dflt, desc] = rest.split(':');
    s.name = n.trim().str();
    s.kind = k.trim().str();
    s.dflt = dflt.trim().str();
    s.desc = desc.trim().str();
    out.push_back(std::move(s));
  }
  return out;
}

llvm::ArrayRef<PassInfo> PassRegistry::passes() {
  static const std::vector<PassInfo> table = [] {
    std::vector<PassInfo> v;
#define PASS(NAME, FACTORY, SUMMARY, OPTIONS)                                  \
  v.push_back(PassInfo{NAME, SUMMARY, parseOptionSpecs(OPTIONS), FACTORY});
#include "passes/Passes.def"
    return v;
  }();
  return table;
}

llvm::ArrayRef<PipelineInfo> PassRegistry::pipelines() {
  static const std::vector<PipelineInfo> table = {
#define PIPELINE(NAME, PASSES, SUMMARY) PipelineInfo{NAME, PASSES, SUMMARY},
#include "passes/Passes.def"
  };
  return table;
}

const PassInfo *PassRegistry::lookup(llvm::StringRef name) {
  for (auto &p : passes())
    if (p.name == name)
      return &p;
  return nullptr;
}

const PipelineInfo *PassRegistry::lookupPipeline(llvm::StringRef name) {
  for (auto &p : pipelines())
    if (p.name == name)
      return &p;
  return nullptr;
}

/// Checks `key=value` against the pass's specs; `isMapKey` is set when only
/// the map option (`*`) accepts the key (such a key may repeat).
static llvm::Error checkOption(const PassInfo &info, llvm::StringRef key,
                               llvm::StringRef value, bool &isMapKey) {
  const PassOptionSpec *spec = nullptr;
  for (auto &o : info.options)
    if (o.name == key || (o.name == "*" && !spec))
      spec = &o;
  isMapKey = spec && spec->name == "*";
  if (!spec) {
    std::string known;
    for (auto &o : info.options)
      known += (known.empty() ? "" : ", ") + o.name;
    return err("pass '{}' has no option '{}'{}", info.name, key.str(),
               known.empty() ? " (it takes no options)" : " (options: " + known + ")");
  }
  int64_t iv;
  if (spec->kind == "int" && value.getAsInteger(10, iv))
    return err("option '{}' of pass '{}' expects an integer, got '{}'", key.str(), info.name,
               value.str());
  if (spec->kind == "bool" && value != "true" && value != "false" && value != "1" &&
      value != "0")
    return err("option '{}' of pass '{}' expects true or false, got '{}'", key.str(),
               info.name, value.str());
  return llvm::Error::success();
}

/// Splits at top-level commas (not inside braces).
static llvm::Expected<std::vector<std::string>> splitTopLevel(llvm::StringRef text) {
  std::vector<std::string> parts;
  int depth = 0;
  std::string cur;
  for (char c : text) {
    if (c == '{')
      ++depth;
    if (c == '}' && --depth < 0)
      return err("unbalanced '}}' in pipeline '{}'", text.str());
    if (c == ',' && depth == 0) {
      parts.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (depth != 0)
    return err("unbalanced '{{' in pipeline '{}'", text.str());
  parts.push_back(cur);
  return parts;
}

static llvm::Error parseInto(llvm::StringRef text, std::vector<std::unique_ptr<Pass>> &out,
                             unsigned depth) {
  if (depth > 8)
    return err("named pipelines nest too deeply");
  auto parts = splitTopLevel(text);
  if (!parts)
    return parts.takeError();
  for (auto &raw : *parts) {
    llvm::StringRef item = llvm::StringRef(raw).trim();
    if (item.empty())
      return err("empty pass name in pipeline '{}'", text.str());
    auto brace = item.find('{');
    llvm::StringRef name = item.substr(0, brace).trim();
    llvm::StringRef optText;
    if (brace != llvm::StringRef::npos) {
      if (!item.ends_with("}"))
        return err("expected '}}' at the end of '{}'", item.str());
      optText = item.substr(brace + 1, item.size() - brace - 2);
    }
    if (auto *pl = PassRegistry::lookupPipeline(name)) {
      if (!optText.empty())
        return err("pipeline '{}' takes no options", name.str());
      if (auto e = parseInto(pl->passes, out, depth + 1))
        return e;
      continue;
    }
    const PassInfo *info = PassRegistry::lookup(name);
    if (!info)
      return err("unknown pass '{}' (see --list-passes)", name.str());
    PassOptions opts;
    llvm::SmallVector<llvm::StringRef> kvs;
    optText.split(kvs, ',', -1, false);
    for (auto kv : kvs) {
      auto [k, v] = kv.split('=');
      k = k.trim();
      v = v.trim();
      if (k.empty() || !kv.contains('='))
        return err("expected 'name=value' in the options of '{}', got '{}'", name.str(),
                   kv.trim().str());
      bool isMapKey = false;
      if (auto e = checkOption(*info, k, v, isMapKey))
        return e;
      if (opts.values.count(k) && !isMapKey)
        return err("option '{}' of pass '{}' given twice", k.str(), name.str());
      opts.values[k] = v.str();
      opts.entries.emplace_back(k.str(), v.str());
    }
    auto p = info->factory(opts);
    p->configure(info->name, std::move(opts));
    out.push_back(std::move(p));
  }
  return llvm::Error::success();
}

llvm::Expected<std::vector<std::unique_ptr<Pass>>>
PassRegistry::parsePipeline(llvm::StringRef text) {
  std::vector<std::unique_ptr<Pass>> out;
  if (text.trim().empty())
    return out;
  if (auto e = parseInto(text, out, 0))
    return e;
  return out;
}

void PassRegistry::printList(llvm::raw_ostream &os) {
  os << "Passes:\n";
  for (auto &p : passes()) {
    os << "  " << p.name << "\n      " << p.summary << "\n";
    for (auto &o : p.options) {
      os << "      option " << o.name << " (" << o.kind;
      if (!o.dflt.empty())
        os << ", default " << o.dflt;
      os << "): " << o.desc << "\n";
    }
  }
  os << "Pipelines:\n";
  for (auto &p : pipelines())
    os << "  " << p.name << " = " << p.passes << "\n      " << p.summary << "\n";
}

llvm::Error PassManager::addPipeline(llvm::StringRef text) {
  auto ps = PassRegistry::parsePipeline(text);
  if (!ps)
    return ps.takeError();
  for (auto &p : *ps)
    passes.push_back(std::move(p));
  return llvm::Error::success();
}

void PassManager::removePasses(llvm::StringRef name) {
  llvm::erase_if(passes, [&](const std::unique_ptr<Pass> &p) { return p->getName() == name; });
}

llvm::Error PassManager::run(Module &m, DiagEngine &diag) {
  llvm::raw_ostream &os = out ? *out : llvm::errs();
  seconds.assign(passes.size(), 0.0);
  PassContext ctx{diag, m, target};
  for (size_t i = 0; i < passes.size(); ++i) {
    Pass &p = *passes[i];
    bool changed = false;
    // By index: a pass may add functions (a variant, docs/IR.md), which are
    // then visited too.
    for (size_t k = 0; k < m.functions.size(); ++k) {
      Function *f = m.functions[k].get();
      for (auto &inst : instrumentations)
        inst->beforePass(p, *f);
      unsigned errors = diag.getNumErrors();
      auto start = std::chrono::steady_clock::now();
      auto c = p.runOnFunction(*f, ctx);
      seconds[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!c)
        return err("pass '{}' failed on @{}: {}", p.describe(), f->getName(),
                   llvm::toString(c.takeError()));
      changed |= *c;
      if (diag.getNumErrors() != errors)
        return err("pass '{}' reported errors on @{}", p.describe(), f->getName());
      if (opts.verifyEach && !verifyFunction(*f, diag))
        return err("the IR after pass '{}' on @{} does not verify", p.describe(),
                   f->getName());
      for (auto &inst : instrumentations)
        if (auto e = inst->afterPass(p, *f))
          return err("pass '{}' on @{}: {}", p.describe(), f->getName(),
                     llvm::toString(std::move(e)));
    }
    if (opts.printAfterAll || (opts.printAfterChange && changed)) {
      os << "// -----// IR Dump After " << p.describe() << (changed ? "" : " (no change)")
         << " //----- //\n";
      printModule(m, os);
    }
  }
  if (opts.statistics)
    printStatistics(os);
  if (opts.timing)
    printTiming(os);
  return llvm::Error::success();
}

void PassManager::printStatistics(llvm::raw_ostream &os) const {
  os << "===-------------------------------------------------------------------------===\n"
     << "                         ... Pass statistics report ...\n"
     << "===-------------------------------------------------------------------------===\n";
  for (auto &p : passes) {
    os << p->describe() << "\n";
    for (auto *s : p->getStatistics())
      os << fmt::format("  ({}) {} - {}\n", s->value, s->name, s->desc);
  }
}

void PassManager::printTiming(llvm::raw_ostream &os) const {
  double total = 0;
  for (double s : seconds)
    total += s;
  os << "===-------------------------------------------------------------------------===\n"
     << "                         ... Pass execution timing report ...\n"
     << "===-------------------------------------------------------------------------===\n"
     << fmt::format("  Total Execution Time: {:.4f} seconds\n\n", total)
     << "   Wall Time (ms)  Name\n";
  for (size_t i = 0; i < passes.size(); ++i)
    os << fmt::format("  {:>12.3f}  {}\n", seconds[i] * 1e3, passes[i]->describe());
  os << fmt::format("  {:>12.3f}  Total\n", total * 1e3);
}
