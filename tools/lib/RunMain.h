//===- RunMain.h - The moe-run driver ---------------------------*- C++ -*-===//
#pragma once

namespace moe {
/// The whole of moe-run: parse, optionally run a pipeline, bind symbols,
/// inputs and params, execute, print a summary per result and write .npy.
int moeRunMain(int argc, char **argv);
} // namespace moe
