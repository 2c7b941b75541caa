//===- Parser.h - Parsing the .moe text format ------------------*- C++ -*-===//
//
// Parses the grammar of DESIGN.md into a Module, inferring every result type
// through the op table and checking written types against it. Errors are
// reported through the DiagEngine with file:line:col; after an error in an
// op the parser skips to the next line and goes on, so one run reports every
// independent error (values defined by a broken op are poisoned silently).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Diagnostics.h"
#include "ir/IR.h"

namespace moe {

/// Parses buffer `bufferId` of `sm`; null after any error (all reported).
std::unique_ptr<Module> parseModule(llvm::SourceMgr &sm, unsigned bufferId,
                                    DiagEngine &diag);

/// Convenience for tests and the library API: parses `text` (named `name`
/// in messages). Diagnostics are collected into the returned error.
llvm::Expected<std::unique_ptr<Module>> parseModuleString(llvm::StringRef text,
                                                          llvm::StringRef name = "<string>");

} // namespace moe
