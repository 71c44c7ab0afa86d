import { Module } from './module';

/** nn.ReLU: no parameters; fused into the preceding convolution's epilogue when the graph is built. */
export class ReLU extends Module {}
