//===- SmithMain.h - The moe-smith driver -----------------------*- C++ -*-===//
#pragma once

namespace moe {
/// The whole of moe-smith (generate, check, reduce, coverage);
/// tools/moe-smith.cpp calls it.
int moeSmithMain(int argc, char **argv);
} // namespace moe
