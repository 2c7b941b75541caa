//===- ShareKernels.h - One definition per distinct kernel -----*- C++ -*-===//
//
// Functions lowered into one LLVM module (a module's blocks, a function and
// its variants) often produce the same kernel several times: 48 blocks of one
// shape, or a dense and a routed block that share their routing. Such kernels
// are compiled once: shareIdenticalKernels keeps the first definition of each
// distinct kernel, points every step that names a copy at it, and erases the
// copy. "Identical" is llvm::FunctionComparator's verdict (the comparison
// LLVM's MergeFunctions pass trusts: signature, attributes and every
// instruction, constant and referenced global), with llvm::StructuralHash
// only bucketing the candidates, so a hash collision can never share two
// kernels that differ.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Program.h"

#include "llvm/ADT/ArrayRef.h"

#include <vector>

namespace llvm {
class Module;
}

namespace moe::codegen {

/// Erases every kernel of `m` identical to an earlier one and renames the
/// steps of `programs` that named it; returns how many were erased.
unsigned shareIdenticalKernels(llvm::Module &m, llvm::ArrayRef<std::vector<Step> *> programs);

} // namespace moe::codegen
