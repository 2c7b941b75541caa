//===- moe-opt.cpp - The pass driver --------------------------------------===//
#include "tools/lib/OptMain.h"

int main(int argc, char **argv) { return moe::moeOptMain(argc, argv); }
