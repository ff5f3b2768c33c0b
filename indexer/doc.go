// Package indexer defines the token-selection methods that misabench
// compares — DSA, MISA (flat), MISA† (hierarchical) and HISA — with their
// parameters and routers, the Backend interface that runs them, and the CPU
// reference backend that every other backend is tested against.
//
// The definitions follow DESIGN.md §1 exactly; see Method for the parameters.
package indexer
