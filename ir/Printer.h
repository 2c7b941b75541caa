//===- Printer.h - Text and DOT output of the IR ----------------*- C++ -*-===//
//
// Prints the text format of DESIGN.md: one op per line, every result type,
// ` x ` between dims, canonical symbolic dims. `print(parse(x))` is a fixed
// point. Value names are kept from the source; unnamed or clashing values are
// given fresh names deterministically.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"
#include "llvm/Support/raw_ostream.h"

namespace moe {

void printModule(const Module &m, llvm::raw_ostream &os);
void printFunction(const Function &f, llvm::raw_ostream &os);
std::string toString(const Module &m);
std::string toString(const Function &f);

/// Graphviz DOT of a function: one node per argument and op, edges along
/// use-def chains, params drawn as boxes.
void printDot(const Function &f, llvm::raw_ostream &os);

} // namespace moe
