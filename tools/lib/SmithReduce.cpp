//===- SmithReduce.cpp - Reducing a failing program (moe-smith) -----------===//
#include "tools/lib/SmithReduce.h"

#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include <chrono>
#include <set>

using namespace moe;

namespace {

std::unique_ptr<Module> parseValid(const std::string &text) {
  auto m = parseModuleString(text, "reduce.moe");
  if (!m) {
    llvm::consumeError(m.takeError());
    return nullptr;
  }
  DiagEngine diag;
  diag.setHandler([](const Diagnostic &) {});
  if ((*m)->functions.size() != 1 || !verifyModule(**m, diag))
    return nullptr;
  return std::move(*m);
}

/// Erases dead ops and rebuilds the function without its unused arguments.
std::unique_ptr<Function> cleanup(Function &f) {
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<Operation *> dead;
    for (auto &op : f.getBody())
      if (!op.is(OpKind::Return) && op.getNumResults() && op.getResult()->use_empty())
        dead.push_back(&op);
    for (auto it = dead.rbegin(); it != dead.rend(); ++it)
      (*it)->erase();
    changed = !dead.empty();
  }
  auto nf = std::make_unique<Function>(f.getName());
  nf->symbols() = f.symbols();
  nf->attrs() = f.attrs();
  nf->resultTypes() = f.resultTypes();
  llvm::DenseMap<const Value *, Value *> vm;
  for (auto *a : f.getArguments())
    if (!a->use_empty())
      vm[a] = nf->addArgument(a->getType(), a->getName(), a->argAttrs());
  for (auto &op : f.getBody()) {
    std::vector<Value *> ops;
    for (auto *v : op.getOperands())
      ops.push_back(vm.lookup(v));
    std::vector<TensorType> types;
    for (unsigned i = 0; i < op.getNumResults(); ++i)
      types.push_back(op.getResult(i)->getType());
    auto n = Operation::create(op.getKind(), ops, op.attrs(), types, op.getLoc());
    for (unsigned i = 0; i < op.getNumResults(); ++i) {
      n->getResult(i)->setName(op.getResult(i)->getName());
      vm[op.getResult(i)] = n->getResult(i);
    }
    nf->push_back(std::move(n));
  }
  return nf;
}

std::string printModuleOf(std::unique_ptr<Function> f) {
  Module m;
  m.functions.push_back(std::move(f));
  return toString(m);
}

Operation *nthOp(Function &f, unsigned i) {
  unsigned k = 0;
  for (auto &op : f.getBody())
    if (!op.is(OpKind::Return) && k++ == i)
      return &op;
  return nullptr;
}

/// Values defined before `op` (arguments included) of type `t`, nearest
/// first.
std::vector<Value *> earlierOfType(Function &f, Operation *op, const TensorType &t) {
  std::vector<Value *> out;
  for (auto *a : f.getArguments())
    if (a->getType() == t)
      out.push_back(a);
  for (auto &o : f.getBody()) {
    if (&o == op)
      break;
    if (o.getNumResults() == 1 && o.getResult()->getType() == t)
      out.push_back(o.getResult());
  }
  std::reverse(out.begin(), out.end());
  return out;
}

/// Op i deleted, its result replaced by operand `operand` (0-2), by the
/// (operand-3)-th earlier value of its type (3-6), or by a new argument
/// (-1); empty when that is not valid.
std::string deleteOp(const std::string &text, unsigned i, int operand) {
  auto m = parseValid(text);
  if (!m)
    return "";
  Function &f = *m->functions[0];
  Operation *op = nthOp(f, i);
  if (!op || op->getNumResults() != 1)
    return "";
  Value *r = op->getResult();
  Value *repl;
  if (operand >= 3) {
    auto vs = earlierOfType(f, op, r->getType());
    if ((size_t)(operand - 3) >= vs.size())
      return "";
    repl = vs[operand - 3];
  } else if (operand >= 0) {
    if ((unsigned)operand >= op->getNumOperands() ||
        op->getOperand(operand)->getType() != r->getType())
      return "";
    repl = op->getOperand(operand);
  } else {
    // A plain argument cannot have a rank-dependent dim (only a sharded
    // param can; the binder would have no value for it).
    std::vector<std::string> syms;
    for (auto &d : r->getType().dims)
      d.collectSymbols(syms);
    for (auto &s : syms)
      if (f.attrs().has(s))
        return "";
    std::string name = r->getName().empty() ? "arg" : r->getName();
    while (f.lookupArgument(name))
      name += "_";
    repl = f.addArgument(r->getType(), name);
  }
  r->replaceAllUsesWith(repl);
  op->erase();
  std::string out = printModuleOf(cleanup(f));
  return parseValid(out) ? out : "";
}

std::string dropResult(const std::string &text, unsigned i) {
  auto m = parseValid(text);
  if (!m)
    return "";
  Function &f = *m->functions[0];
  Operation *ret = f.getReturn();
  if (!ret || ret->getNumOperands() < 2 || i >= ret->getNumOperands())
    return "";
  std::vector<Value *> ops(ret->getOperands().begin(), ret->getOperands().end());
  ops.erase(ops.begin() + i);
  ret->setOperands(ops);
  f.resultTypes().erase(f.resultTypes().begin() + i);
  std::string out = printModuleOf(cleanup(f));
  return parseValid(out) ? out : "";
}

std::string narrowSymbol(const std::string &text, unsigned s, int64_t hi) {
  auto m = parseValid(text);
  if (!m)
    return "";
  Function &f = *m->functions[0];
  if (s >= f.symbols().size() || f.attrs().has(f.symbols()[s].name) ||
      f.symbols()[s].hi <= hi || f.symbols()[s].lo > hi)
    return "";
  f.symbols()[s].hi = hi;
  std::string out = toString(*m);
  return parseValid(out) ? out : "";
}

/// Standalone integers of the text (words of digits only, not part of a
/// float, a name or an expression).
std::vector<std::pair<size_t, size_t>> integerWords(const std::string &t) {
  auto wordChar = [](char c) { return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '%' || c == '@'; };
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < t.size();) {
    if (!wordChar(t[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < t.size() && wordChar(t[j]))
      ++j;
    bool digits = true;
    for (size_t k = i; k < j; ++k)
      digits &= isdigit((unsigned char)t[k]) != 0;
    bool inExpr = (i > 0 && (t[i - 1] == '*' || t[i - 1] == '+' || t[i - 1] == '-' ||
                             t[i - 1] == 'e')) ||
                  (j < t.size() && (t[j] == '*' || t[j] == '+' || t[j] == '-'));
    if (digits && !inExpr)
      out.push_back({i, j - i});
    i = j;
  }
  return out;
}

std::string replaceInteger(const std::string &t, const std::string &from, const std::string &to) {
  std::string out;
  size_t last = 0;
  for (auto [pos, len] : integerWords(t))
    if (t.compare(pos, len, from) == 0) {
      out += t.substr(last, pos - last) + to;
      last = pos + len;
    }
  out += t.substr(last);
  return out;
}

} // namespace

unsigned moe::smithNumOps(const std::string &text) {
  auto m = parseValid(text);
  if (!m)
    return 0;
  unsigned n = 0;
  for (auto &op : m->functions[0]->getBody())
    n += !op.is(OpKind::Return);
  return n;
}

std::string moe::smithReduce(const std::string &text, const SmithPredicate &stillFails,
                             double seconds, ReduceStats &stats) {
  auto t0 = std::chrono::steady_clock::now();
  auto timeUp = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >
           seconds;
  };
  std::string cur = text;
  stats.opsBefore = smithNumOps(text);
  std::set<std::string> tried;
  auto attempt = [&](const std::string &cand) {
    if (cand.empty() || cand == cur || !tried.insert(cand).second || timeUp())
      return false;
    ++stats.tries;
    if (!stillFails(cand))
      return false;
    ++stats.accepted;
    cur = cand;
    return true;
  };
  for (bool changed = true; changed && !timeUp();) {
    changed = false;
    // 1. Ops, from the last to the first.
    for (int i = (int)smithNumOps(cur) - 1; i >= 0 && !timeUp(); --i) {
      for (int operand : {0, 1, 2, 3, 4, 5, 6, -1})
        if (attempt(deleteOp(cur, (unsigned)i, operand))) {
          changed = true;
          break;
        }
      i = std::min(i, (int)smithNumOps(cur));
    }
    // 2. Results.
    for (unsigned i = 0; i < 4; ++i)
      changed |= attempt(dropResult(cur, i));
    // 3. Symbol ranges.
    for (unsigned s = 0; s < 3; ++s)
      for (int64_t hi : {1, 2, 8})
        if (attempt(narrowSymbol(cur, s, hi))) {
          changed = true;
          break;
        }
    // 4. Dims: each integer halved, largest first.
    std::set<int64_t, std::greater<int64_t>> ints;
    for (auto [pos, len] : integerWords(cur))
      if (len < 10)
        ints.insert(std::stoll(cur.substr(pos, len)));
    for (int64_t v : ints)
      if (v >= 2 && v % 2 == 0)
        changed |= attempt(replaceInteger(cur, std::to_string(v), std::to_string(v / 2)));
  }
  stats.opsAfter = smithNumOps(cur);
  return cur;
}
