//===- IR.h - Values, operations, functions, modules ------------*- C++ -*-===//
//
// The SSA graph. A Function has typed arguments (weights are arguments marked
// {param}), one block of operations forming a DAG, and a `return`. Every Value
// knows its users, so passes walk use-def chains and never depend on the order
// of operations in the body (which only has to be a topological order).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/OpInfo.h"

#include "llvm/ADT/ilist.h"
#include "llvm/ADT/ilist_node.h"
#include "llvm/Support/SMLoc.h"
#include <memory>

namespace moe {

class Operation;
class Function;
class Module;

/// One use of a value: operand `index` of `user`.
struct Use {
  Operation *user;
  unsigned index;
  bool operator==(const Use &o) const { return user == o.user && index == o.index; }
};

/// A tensor value: a function argument or an operation's result.
class Value {
public:
  const TensorType &getType() const { return type; }
  void setType(TensorType t) { type = std::move(t); }
  const std::string &getName() const { return name; }
  void setName(std::string n) { name = std::move(n); }

  /// The defining op, or null for a function argument.
  Operation *getDefiningOp() const { return defOp; }
  bool isArgument() const { return defOp == nullptr; }
  unsigned getArgIndex() const { return argIndex; }
  /// Argument attributes ({param}, later shard specs, gguf names).
  AttrDict &argAttrs() { return attrs; }
  const AttrDict &argAttrs() const { return attrs; }
  bool isParam() const { return isArgument() && attrs.getFlag("param"); }

  const std::vector<Use> &getUses() const { return uses; }
  bool use_empty() const { return uses.empty(); }
  bool hasOneUse() const { return uses.size() == 1; }
  /// Distinct users (an op using the value twice appears once).
  std::vector<Operation *> getUsers() const;
  /// Make every user use `v` instead.
  void replaceAllUsesWith(Value *v);

  llvm::SMLoc getLoc() const { return loc; }
  void setLoc(llvm::SMLoc l) { loc = l; }

private:
  friend class Operation;
  friend class Function;
  TensorType type;
  std::string name;
  Operation *defOp = nullptr;
  unsigned argIndex = 0;
  AttrDict attrs;
  std::vector<Use> uses;
  llvm::SMLoc loc;
};

class Operation : public llvm::ilist_node<Operation> {
public:
  /// Creates a detached op; insert it into a function's body.
  static std::unique_ptr<Operation> create(OpKind kind, llvm::ArrayRef<Value *> operands,
                                           AttrDict attrs,
                                           llvm::ArrayRef<TensorType> resultTypes,
                                           llvm::SMLoc loc = {});
  ~Operation();

  OpKind getKind() const { return kind; }
  const OpInfo &getInfo() const { return getOpInfo(kind); }
  llvm::StringRef getName() const { return getInfo().name; }
  bool is(OpKind k) const { return kind == k; }
  bool hasTrait(uint32_t t) const { return getInfo().has(t); }

  unsigned getNumOperands() const { return operands.size(); }
  Value *getOperand(unsigned i) const { return operands[i]; }
  llvm::ArrayRef<Value *> getOperands() const { return operands; }
  void setOperand(unsigned i, Value *v);
  void setOperands(llvm::ArrayRef<Value *> vs);

  unsigned getNumResults() const { return results.size(); }
  Value *getResult(unsigned i = 0) const { return results[i].get(); }

  AttrDict &attrs() { return attributes; }
  const AttrDict &attrs() const { return attributes; }
  /// Attribute as written, else the op table's default.
  const Attribute *getAttr(llvm::StringRef n) const {
    return getInfo().attrOrDefault(attributes, n);
  }

  llvm::SMLoc getLoc() const { return loc; }
  void setLoc(llvm::SMLoc l) { loc = l; }
  Function *getParent() const { return parent; }

  /// Drop operand uses (before erasing a dead op or a cycle).
  void dropAllReferences();
  /// Unlink from the parent and delete. Results must be unused; if a
  /// buggy rewrite leaves a use, the op is unlinked but kept (freed with
  /// its function), so the verifier reports the use as a value defined
  /// outside the function instead of the program reading freed memory.
  void erase();

  /// `matmul_id %up`: the op's name and its first result, for messages.
  std::string getLabel() const;

private:
  friend class Function;
  Operation() = default;
  OpKind kind = OpKind::Return;
  std::vector<Value *> operands;
  std::vector<std::unique_ptr<Value>> results;
  AttrDict attributes;
  llvm::SMLoc loc;
  Function *parent = nullptr;
};

/// A symbol declared on a function: `where T in [1, 8192]`.
struct SymbolDecl {
  std::string name;
  int64_t lo, hi;
  llvm::SMLoc loc;
};

class Function {
public:
  using OpList = llvm::iplist<Operation>;

  explicit Function(std::string name) : name(std::move(name)) {}
  ~Function();

  const std::string &getName() const { return name; }
  void setName(std::string n) { name = std::move(n); }
  llvm::SMLoc getLoc() const { return loc; }
  void setLoc(llvm::SMLoc l) { loc = l; }

  Value *addArgument(TensorType type, std::string name, AttrDict attrs = {});
  unsigned getNumArguments() const { return args.size(); }
  Value *getArgument(unsigned i) const { return args[i].get(); }
  std::vector<Value *> getArguments() const;
  Value *lookupArgument(llvm::StringRef name) const;

  std::vector<TensorType> &resultTypes() { return results; }
  const std::vector<TensorType> &resultTypes() const { return results; }

  std::vector<SymbolDecl> &symbols() { return syms; }
  const std::vector<SymbolDecl> &symbols() const { return syms; }
  const SymbolDecl *lookupSymbol(llvm::StringRef n) const;
  SymbolRanges symbolRanges() const;

  /// Function-level attributes (e.g. the SPMD rank count).
  AttrDict &attrs() { return attributes; }
  const AttrDict &attrs() const { return attributes; }

  OpList &getBody() { return body; }
  const OpList &getBody() const { return body; }
  /// The `return` op (last op of the body), or null if missing.
  Operation *getReturn() const;

  /// Insert helpers: take ownership, return the raw op.
  Operation *push_back(std::unique_ptr<Operation> op);
  Operation *insertBefore(Operation *pos, std::unique_ptr<Operation> op);
  Operation *insertAfter(Operation *pos, std::unique_ptr<Operation> op);

  /// Reorders the body into a topological order, keeping the current order
  /// where it is already valid. Returns false if the graph has a cycle.
  bool sortTopologically();

  /// Deep copy (values renamed identically, uses rebuilt). The copy refers
  /// to the same module (for its variants) but is not in it.
  std::unique_ptr<Function> clone() const;

  /// The module that holds this function (set by Module::add), where its
  /// variants are found; null outside a module.
  Module *getModule() const { return module; }
  void setModule(Module *m) { module = m; }

  /// Variants (docs/IR.md): the functions named by the string list
  /// attribute `variants`, of the same module and signature, whose symbol
  /// ranges are sub-ranges of this function's. Running this function with
  /// symbol values inside a variant's ranges runs the first such variant
  /// instead: a function specialised by the range of a symbol. Names not
  /// found are skipped (the verifier reports them).
  std::vector<const Function *> getVariants() const;
  /// The function that runs for `syms`: the first variant whose symbol
  /// ranges hold them, else this function.
  const Function &selectVariant(const SymbolBindings &syms) const;
  /// Whether variant `v` of this function covers `syms`: each symbol whose
  /// range `v` narrows is bound inside it.
  bool variantCovers(const Function &v, const SymbolBindings &syms) const;

private:
  std::string name;
  Module *module = nullptr;
  llvm::SMLoc loc;
  std::vector<std::unique_ptr<Value>> args;
  std::vector<TensorType> results;
  std::vector<SymbolDecl> syms;
  AttrDict attributes;
  OpList body;
  /// Ops erased while their results were still used (Operation::erase).
  std::vector<std::unique_ptr<Operation>> erasedInUse;
  friend class Operation;
};

class Module {
public:
  std::string name; ///< empty when the text had no `module @name {}`
  std::vector<std::unique_ptr<Function>> functions;

  Function *lookup(llvm::StringRef n) const;
  /// Appends `f` and makes this its module.
  Function *add(std::unique_ptr<Function> f);
  std::unique_ptr<Module> clone() const;
  /// Forgets every source location (before the SourceMgr they point into
  /// goes away).
  void clearLocations();
};

} // namespace moe

