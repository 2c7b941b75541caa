//===- Diagnostics.h - Located errors, warnings and remarks -----*- C++ -*-===//
//
// Every diagnostic carries a source location; the default handler prints it
// through llvm::SourceMgr as `file:line:col: error: msg` with the source line
// and a caret. Tools swap the handler to collect diagnostics
// (--verify-diagnostics) instead of printing them.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/Support/SMLoc.h"
#include "llvm/Support/SourceMgr.h"
#include <functional>
#include <string>

namespace moe {

class Operation;

enum class Severity { Error, Warning, Remark, Note };

struct Diagnostic {
  llvm::SMLoc loc;
  Severity severity;
  std::string message;
};

class DiagEngine {
public:
  using Handler = std::function<void(const Diagnostic &)>;

  /// Prints through `sm` (may be null: then `<unknown>: error: ...`).
  explicit DiagEngine(llvm::SourceMgr *sm = nullptr) : sm(sm) {}

  void emit(llvm::SMLoc loc, Severity s, std::string msg);
  void error(llvm::SMLoc loc, std::string msg) { emit(loc, Severity::Error, std::move(msg)); }
  void warning(llvm::SMLoc loc, std::string msg) { emit(loc, Severity::Warning, std::move(msg)); }
  void remark(llvm::SMLoc loc, std::string msg) { emit(loc, Severity::Remark, std::move(msg)); }
  void note(llvm::SMLoc loc, std::string msg) { emit(loc, Severity::Note, std::move(msg)); }
  /// `'opname' op msg`, at the op's location.
  void opError(const Operation *op, const std::string &msg);
  void opRemark(const Operation *op, const std::string &msg);
  void opWarning(const Operation *op, const std::string &msg);

  void setHandler(Handler h) { handler = std::move(h); }
  llvm::SourceMgr *getSourceMgr() const { return sm; }
  unsigned getNumErrors() const { return numErrors; }
  void resetErrors() { numErrors = 0; }

  /// Default printing (used by the default handler).
  void print(const Diagnostic &d) const;

private:
  llvm::SourceMgr *sm;
  Handler handler;
  unsigned numErrors = 0;
};

} // namespace moe
