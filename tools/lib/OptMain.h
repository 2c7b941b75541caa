//===- OptMain.h - The moe-opt driver ---------------------------*- C++ -*-===//
#pragma once

namespace moe {
/// The whole of moe-opt (flags, splitting, diagnostics verification,
/// pipeline, printing), as MLIR's MlirOptMain; tools/moe-opt.cpp calls it.
int moeOptMain(int argc, char **argv);
} // namespace moe
