//===- Diagnostics.cpp - Located errors, warnings and remarks -------------===//
#include "ir/Diagnostics.h"
#include "ir/IR.h"

#include "llvm/Support/raw_ostream.h"

using namespace moe;

static llvm::SourceMgr::DiagKind toKind(Severity s) {
  switch (s) {
  case Severity::Error: return llvm::SourceMgr::DK_Error;
  case Severity::Warning: return llvm::SourceMgr::DK_Warning;
  case Severity::Remark: return llvm::SourceMgr::DK_Remark;
  case Severity::Note: return llvm::SourceMgr::DK_Note;
  }
  return llvm::SourceMgr::DK_Error;
}

void DiagEngine::emit(llvm::SMLoc loc, Severity s, std::string msg) {
  if (s == Severity::Error)
    ++numErrors;
  Diagnostic d{loc, s, std::move(msg)};
  if (handler)
    handler(d);
  else
    print(d);
}

void DiagEngine::print(const Diagnostic &d) const {
  if (sm && d.loc.isValid() && sm->FindBufferContainingLoc(d.loc)) {
    sm->PrintMessage(llvm::errs(), d.loc, toKind(d.severity), d.message);
    return;
  }
  static const char *names[] = {"error", "warning", "remark", "note"};
  llvm::errs() << "<unknown>: " << names[(int)d.severity] << ": " << d.message << "\n";
}

static std::string opMsg(const Operation *op, const std::string &msg) {
  return "'" + op->getName().str() + "' op " + msg;
}

void DiagEngine::opError(const Operation *op, const std::string &msg) {
  error(op->getLoc(), opMsg(op, msg));
}
void DiagEngine::opRemark(const Operation *op, const std::string &msg) {
  remark(op->getLoc(), opMsg(op, msg));
}
void DiagEngine::opWarning(const Operation *op, const std::string &msg) {
  warning(op->getLoc(), opMsg(op, msg));
}
