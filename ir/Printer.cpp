//===- Printer.cpp - Text and DOT output of the IR ------------------------===//
#include "ir/Printer.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringSet.h"

using namespace moe;

namespace {
/// Assigns each value of a function a unique printed name.
class Namer {
public:
  explicit Namer(const Function &f) {
    for (auto *a : f.getArguments())
      assign(a);
    for (auto &op : f.getBody())
      for (unsigned i = 0; i < op.getNumResults(); ++i)
        assign(op.getResult(i));
  }
  std::string operator()(const Value *v) const {
    auto it = names.find(v);
    return it == names.end() ? "%<null>" : "%" + it->second;
  }

private:
  static bool validName(llvm::StringRef n) {
    if (n.empty())
      return false;
    for (char c : n)
      if (!(isalnum((unsigned char)c) || c == '_' || c == '.' || c == '$' || c == '-'))
        return false;
    return true;
  }
  void assign(const Value *v) {
    std::string base = validName(v->getName()) ? v->getName() : "";
    std::string n = base.empty() ? std::to_string(counter++) : base;
    while (used.count(n))
      n = (base.empty() ? "" : base + "_") + std::to_string(counter++);
    used.insert(n);
    names[v] = n;
  }
  llvm::DenseMap<const Value *, std::string> names;
  llvm::StringSet<> used;
  unsigned counter = 0;
};
} // namespace

void moe::printFunction(const Function &f, llvm::raw_ostream &os) {
  Namer name(f);
  std::string head = "func @" + f.getName() + "(";
  os << head;
  std::string indent(head.size(), ' ');
  for (unsigned i = 0; i < f.getNumArguments(); ++i) {
    Value *a = f.getArgument(i);
    if (i)
      os << ",\n" << indent;
    os << name(a) << ": " << a->getType().str() << a->argAttrs().str();
  }
  os << ")\n    -> ";
  for (size_t i = 0; i < f.resultTypes().size(); ++i)
    os << (i ? ", " : "") << f.resultTypes()[i].str();
  if (!f.symbols().empty()) {
    os << " where ";
    for (size_t i = 0; i < f.symbols().size(); ++i) {
      auto &s = f.symbols()[i];
      os << (i ? ", " : "") << s.name << " in [" << s.lo << ", " << s.hi << "]";
    }
  }
  if (!f.attrs().empty())
    os << " attributes" << f.attrs().str();
  os << " {\n";
  for (auto &op : f.getBody()) {
    os << "  ";
    for (unsigned i = 0; i < op.getNumResults(); ++i)
      os << (i ? ", " : "") << name(op.getResult(i));
    if (op.getNumResults())
      os << " = ";
    os << op.getName();
    for (unsigned i = 0; i < op.getNumOperands(); ++i)
      os << (i ? ", " : " ") << name(op.getOperand(i));
    os << op.attrs().str();
    for (unsigned i = 0; i < op.getNumResults(); ++i)
      os << (i ? ", " : " : ") << op.getResult(i)->getType().str();
    os << "\n";
  }
  os << "}\n";
}

void moe::printModule(const Module &m, llvm::raw_ostream &os) {
  if (!m.name.empty())
    os << "module @" << m.name << " {\n";
  for (size_t i = 0; i < m.functions.size(); ++i) {
    if (i)
      os << "\n";
    printFunction(*m.functions[i], os);
  }
  if (!m.name.empty())
    os << "}\n";
}

std::string moe::toString(const Module &m) {
  std::string s;
  llvm::raw_string_ostream os(s);
  printModule(m, os);
  return s;
}

std::string moe::toString(const Function &f) {
  std::string s;
  llvm::raw_string_ostream os(s);
  printFunction(f, os);
  return s;
}

static std::string dotEscape(const std::string &s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '{' || c == '}' || c == '<' || c == '>' || c == '|')
      r += '\\';
    r += c;
  }
  return r;
}

void moe::printDot(const Function &f, llvm::raw_ostream &os) {
  Namer name(f);
  llvm::DenseMap<const Value *, std::string> node;
  os << "digraph \"" << dotEscape(f.getName()) << "\" {\n  rankdir=TB;\n"
     << "  node [fontname=\"monospace\", fontsize=10];\n";
  unsigned n = 0;
  for (auto *a : f.getArguments()) {
    std::string id = "n" + std::to_string(n++);
    node[a] = id;
    os << "  " << id << " [shape=" << (a->isParam() ? "box" : "ellipse")
       << ", label=\"" << dotEscape(name(a)) << "\\n"
       << dotEscape(a->getType().str()) << "\"];\n";
  }
  for (auto &op : f.getBody()) {
    std::string id = "n" + std::to_string(n++);
    std::string label = op.getNumResults() ? name(op.getResult()) + " = " : "";
    label = dotEscape(label + op.getName().str() + op.attrs().str());
    if (op.getNumResults())
      label += "\\n" + dotEscape(op.getResult()->getType().str());
    os << "  " << id << " [shape=" << (op.is(OpKind::Return) ? "doublecircle" : "oval")
       << ", label=\"" << label << "\"];\n";
    for (unsigned i = 0; i < op.getNumOperands(); ++i)
      if (node.count(op.getOperand(i)))
        os << "  " << node[op.getOperand(i)] << " -> " << id << " [label=\"" << i
           << "\"];\n";
    for (unsigned i = 0; i < op.getNumResults(); ++i)
      node[op.getResult(i)] = id;
  }
  os << "}\n";
}
