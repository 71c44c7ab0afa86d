import { ConvTransBlock } from '../../src/layers/conv-trans-block';
import { Sequential } from '../../src/layers/sequential';
import type { Network } from '../../src/models/network';

/** The configuration of tools/torch/make_scunet_training_fixtures.py's pair. */
export interface PairConfig {
  convDim: number;
  transDim: number;
}

/**
 * nn.Sequential(ConvTransBlock W, ConvTransBlock SW) as a trainable network (keys 0.*, 1.*): SCUNet's building
 * block, small enough for whole-step fixtures (a whole SCUNet is at least dim 64, 1.35 M weights).
 */
export class ConvTransBlockPair extends Sequential implements Network {
  readonly architecture = 'ConvTransBlockPair';
  readonly scale = 1;
  readonly inChannels: number;
  readonly outChannels: number;

  constructor({ convDim, transDim }: PairConfig) {
    super(new ConvTransBlock(convDim, transDim, false), new ConvTransBlock(convDim, transDim, true));
    this.inChannels = convDim + transDim;
    this.outChannels = convDim + transDim;
  }
}
