//===- DiagVerifier.h - --verify-diagnostics --------------------*- C++ -*-===//
//
// Collects the `// expected-error @+1 {{message}}` annotations of a buffer
// (error, warning, remark, note; `@+N`, `@-N`, `@N` absolute, or the same
// line) and checks the diagnostics actually emitted against them: each
// expected one must be produced on its line with a message containing the
// text, and nothing unexpected may be produced.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Diagnostics.h"

namespace moe {

class DiagVerifier {
public:
  DiagVerifier(llvm::SourceMgr &sm, unsigned bufferId);
  /// The handler to install on the DiagEngine.
  void handle(const Diagnostic &d) { seen.push_back(d); }
  /// Reports mismatches to stderr; returns true when all matched.
  bool verify();

private:
  struct Expected {
    Severity severity;
    unsigned line;
    std::string text;
    llvm::SMLoc loc;
    bool matched = false;
  };
  llvm::SourceMgr &sm;
  unsigned bufferId;
  std::vector<Expected> expected;
  std::vector<Diagnostic> seen;
  bool annotationErrors = false;
};

} // namespace moe
