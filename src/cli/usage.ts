/** Usage texts: the overview (`webgpu-restore --help`) and one per command (`webgpu-restore <command> --help`). */

const RESTORE_OPTIONS = `  -o, --output <file>    output file for a single input (.png, .tif or .tiff)
      --out-dir <dir>    write every output into <dir> (created if missing); default: next to each input
  -m, --model <name>     a built-in model (dncnn_25)
  -w, --weights <file>   a checkpoint: PyTorch .pth/.pt (zip or legacy) or .safetensors; the network is
                         recognised from its keys
      --tile <n>         tile size in pixels, for images larger than the device allows at once
      --gray             convert RGB inputs to grayscale (BT.601) first, for a grayscale model
      --rgb              convert grayscale inputs to RGB first, for a colour model
      --info-bar <auto|n>  keep an SEM info bar (detected, or the bottom n rows) out of the run and paste it
                         back unchanged (denoise only)
      --normalize <lo,hi>  map the image's lo-th and hi-th percentiles (e.g. 1,99.8; per channel, info bar
                         excluded) to 0 and 1 before the model, and the output back to the image's range
      --force            replace existing outputs (also an input file named as the output)
      --kernels          list the kernel variants chosen on this adapter (shader labels)
  -q, --quiet            print nothing but errors
  -h, --help             this text

Inputs are files, folders (every PNG/TIFF inside) and patterns with * and ? (quote them). Outputs keep the
input's format, bit depth and pages. Existing files are never replaced without --force. A file that fails,
or whose output exists, is reported and skipped; the exit code is then 1.`;

export const COMMAND_USAGE: Record<string, string> = {
  denoise: `usage: webgpu-restore denoise <inputs…> [-o <output> | --out-dir <dir>] [options]

Denoises images with the built-in DnCNN σ=25 (grayscale) or the model given. Outputs are named
<name>.denoised.<ext> unless -o is given.

options:
${RESTORE_OPTIONS}`,

  upscale: `usage: webgpu-restore upscale <inputs…> --weights <file> [-o <output> | --out-dir <dir>] [options]

Super-resolves images with a ×2/×3/×4 model (MSRResNet, SRResNet, RRDBNet/ESRGAN, SINSR). Outputs are
named <name>.x<scale>.<ext> unless -o is given.

options:
${RESTORE_OPTIONS}`,

  inspect: `usage: webgpu-restore inspect <checkpoint> [--all] [--json]

Prints a checkpoint's format, the network it holds (architecture and configuration), its tensor count,
parameter count, dtypes, and its keys with shapes.

options:
      --all              list every key (default: the first 20)
      --json             machine-readable output
  -h, --help             this text`,

  convert: `usage: webgpu-restore convert <checkpoint> -o <output.safetensors> [--dtype f32|f16|bf16] [--force]

Reads a checkpoint (.pth zip or legacy, or safetensors), recognises its network, and writes its state_dict
as safetensors with the architecture and configuration in __metadata__, plus a JSON manifest beside it
(<output>.json: architecture, configuration, channels, scale, value range, task, sha256 of both files).

options:
  -o, --output <file>    the .safetensors file to write
      --dtype <type>     floating-point type to store: f32 (default), f16 or bf16
      --force            replace an existing output (the input is never replaced)
  -q, --quiet            print nothing but errors
  -h, --help             this text`,

  info: `usage: webgpu-restore info [--json]

Prints the WebGPU adapter the library runs on, its features and its limits.

options:
      --json             machine-readable output
  -h, --help             this text`,

  train: `usage: webgpu-restore train (--arch <name> | -w <init.pth>) (--clean <dir> --noise <model> |
                            --pairs <noisy_dir>,<clean_dir> | --pairs <lr_dir>,<hr_dir> |
                            --clean <hr_dir> --degrade bicubic)
                            (--epochs <n> | --steps <n> | --minutes <m>) -o <out.pth> [options]
       webgpu-restore train --method n2v|n2v2|nb2nb --images <dir|glob> (--arch <name> | -w <init.pth>)
                            (--epochs <n> | --steps <n> | --minutes <m>) -o <out.pth> [options]

Trains a network on the GPU and writes its state_dict as a .pth that PyTorch 1.13 loads with
torch.load(weights_only=True) and load_state_dict(strict=True), plus <out>.best.pth (best validation PSNR),
<out>.pth.json and <out>.pth.optimizer.safetensors (the state --resume continues from). Ctrl-C stops after
the current step and writes the checkpoint.

method:
      --method <m>         supervised (default): clean images with --noise, or noisy/clean --pairs;
                           n2n: Noise2Noise, --pairs <first_dir>,<second_dir> of two noisy acquisitions of
                           each field; n2v, n2v2, nb2nb: Noise2Void, N2V2 (median replacement; best with
                           --arch n2v2-unet) and Neighbor2Neighbor, from the noisy --images alone
      --images <d|glob>    the noisy images of a self-supervised method (PNG/TIFF, any size and bit depth)
      --struct <axis:n>    structN2V for line-correlated noise: also hide n pixels (odd, 3–15) along
                           horizontal or vertical around each blind spot
      --normalize <lo,hi>  map each image's lo-th and hi-th percentiles to 0 and 1 (e.g. 1,99.8); written to
                           <out>.pth.json, which denoise -w <out.pth> then applies by itself
      --val <p>            share of whole images held out for validation: 10% (default for self-supervised
                           methods, whose validation is the method's loss on them) or 0.1, at least one
                           image of two or more (one image validates on itself); or --split
model:
      --arch <name>        a new network, as its paper or upstream recipe builds it, initialised as PyTorch's
                           constructors do (seeded). Denoisers:
                             dncnn         KAIR's DnCNN: 17 layers of 64 features, conv → BatchNorm → ReLU
                             unet          milesial's U-Net: 64 features at the first level, transposed-
                                           convolution upsampling (patches a multiple of 16)
                             resunet-scse  smp Unet('resnet34', decoder_attention_type='scse'), decoder
                                           256/128/64/32/16
                             scunet        KAIR's SCUNet: dim 64, 4 blocks per stage
                             n2v-unet      CAREamics' Noise2Void U-Net: depth 2, 32 features at the first
                                           level, BatchNorm, bilinear upsampling
                             n2v2-unet     the same with N2V2's max-blur-pool and no top skip connection
                           super-resolution (trained on --pairs <lr_dir>,<hr_dir>):
                             msrresnet     BasicSR's MSRResNet: 64 features, 16 blocks (--scale 2, 3, 4)
                             srresnet      SRGAN's SRResNet: 64 features, 16 blocks, PReLU (--scale 2, 4, 8)
                             rrdbnet       ESRGAN's RRDBNet: 64 features, growth 32, 23 RRDBs (--scale 1, 2, 4)
                             sinsr         the SINSR generator (ARCH7), ×4, images in [-1, 1]
                             sinsr-cbam    the same with CBAM attention
  -w, --weights <file>     start from a checkpoint (.pth/.pt or .safetensors; recognised from its keys), or
                           builtin:<name> for a model that ships with the package (builtin:dncnn_25)
      --channels <n>       image channels in and out of a new network (default 1)
      --scale <n>          upscaling factor of a new super-resolution network (default 4); with -w or
                           --resume it must be the checkpoint's own
      --resume             continue the run that wrote -o <out.pth> (weights, optimizer, step, schedule,
                           and its --method, --struct and --normalize, which need not be given again)
data:
      --clean <dir>        clean images; noisy inputs are made per patch with --noise
      --noise <model>      gaussian:25 (σ on the 8-bit scale), gaussian:0-55 (σ drawn per patch) or
                           poisson-gaussian:A,SIGMA (A·Poisson(x/A) + N(0, SIGMA²), image units)
      --degrade bicubic    for a ×s network: the low-resolution images of --clean <hr_dir> made by MATLAB's
                           imresize(1/s, 'bicubic') (antialiased Keys cubic), kept in float, not rounded to
                           8 bits as MATLAB does; each image first cropped to a multiple of s
      --pairs <n>,<c>      folders of noisy and clean images, matched by file name; for a ×s network, of
                           low- and high-resolution images (each high-resolution image exactly s× its pair)
      --masks <dir>        defect masks (non-zero inside a defect), matched by file name; with --lambda <l>
                           the loss is the weighted-mask MSE Σ(1−m)e²/N₀ + l·Σme²/N₁ (--loss masked-mse)
      --info-bar <auto|n>  leave an SEM info bar (detected, or the bottom n rows) out of the images
      --gray               convert RGB images to grayscale (BT.601)
      --split <t,v,x>      percent of the images for training, validation and test (default 70,20,10;
                           whole images, seeded); validation PSNR/SSIM runs after every epoch
      --lpips <b>,<h>      also the validation images' mean LPIPS distance (v0.1): <b> torchvision's vgg16
                           or alexnet state_dict, <h> the lpips package's heads (weights/v0.1/vgg.pth or
                           alex.pth); printed with PSNR/SSIM; the best checkpoint is still the best PSNR
      --batch <n>          patches per step (default 16)
      --patch <n>          patch side in pixels (default 64); for a ×s network the low-resolution patch,
                           with the aligned s·n high-resolution patch as its target
      --augment <mode>     dihedral (the 8 flips and rotations, default; the same for input, target and
                           mask) or none
      --seed <n>           seed of initialisation, split, crops, augmentation and noise (default 0)
training:
      --loss <name>        mse (default), l1, charbonnier (mean over pixels, as PyTorch), masked-mse, or ssim
                           (1 − SSIM, Gaussian 11×11, σ 1.5, data range 1; patches of at least 11 px); or a
                           weighted sum such as l1+0.1*sobel+0.05*laplacian:mse+1e-4*tv+0.5*ssim with sobel
                           and laplacian (second order; :l1 default or :mse) edge losses and tv (total
                           variation of the output, :anisotropic-l1 default or :squared); perceptual is
                           BasicSR's VGG feature loss (:l1 default, :l2 or :fro) through --vgg, its weight
                           the perceptual_weight (e.g. l1+0.01*perceptual)
      --vgg <file>[:<layers>]  the perceptual loss's network: torchvision's vgg19 (or vgg16) state_dict;
                           <layers> BasicSR's layer_weights, e.g. conv5_4=1,relu4_4=0.5 (default conv5_4=1,
                           ESRGAN's; conv5_3 for a vgg16)
      --optimizer <name>   adam (default), adamw or sgd (PyTorch 1.13's update order)
      --lr <x>             learning rate (default 1e-3 for adam/adamw, 4e-4 with n2v, n2v2 and nb2nb as
                           n2v's; required for sgd)
      --weight-decay <x>   default 0 (adam, sgd) or 1e-2 (adamw)
      --momentum <x>       SGD momentum (default 0); --nesterov for Nesterov momentum
      --clip-grad-norm <x> clip the gradients' global L2 norm (clip_grad_norm_)
      --schedule <s>       per epoch: step:N[,GAMMA], multistep:M1,M2[/GAMMA], cosine:T[,ETA_MIN] or
                           plateau[:PATIENCE[,FACTOR]] (on the validation PSNR)
      --epochs <n>         passes over the training images; or --steps <n> (a self-supervised run then
                           validates ten times along the run)
      --minutes <m>        stop after m minutes of training (validated and written as at the last step);
                           alone, as many steps as fit, validated every 100, the progress line showing
                           the time left
      --early-stop <n>     stop after n validations without a better PSNR
output:
  -o, --output <file>      the .pth to write
      --force              replace existing outputs
  -q, --quiet              print nothing but errors
  -h, --help               this text

Validation PSNR/SSIM compare with the clean (high-resolution) images in [0, 1]; networks in [-1, 1]
(sinsr) see 2x − 1 in training and validation, as in inference. With --patch equal to the (low-
resolution) image size, --batch equal to the number of images, --split 100,0,0 and --augment none,
every step sees exactly the given images.`,

  compare: `usage: webgpu-restore compare <a> <b> [--data-range <n>] [--lpips <backbone>,<heads>] [--json]

Prints PSNR and SSIM (Gaussian 11×11 window, σ 1.5) between two images of the same size and channels.

options:
      --data-range <n>   the value range (default: 255 for 8-bit, 65535 for 16-bit, 1 for float images)
      --lpips <b>,<h>    also the LPIPS distance (v0.1; needs a GPU): <b> torchvision's vgg16 or alexnet
                         state_dict (.pth), <h> the lpips package's heads (weights/v0.1/vgg.pth or alex.pth);
                         images read in [0, 1] (integer samples over their maximum), gray repeated to RGB
      --json             machine-readable output
  -h, --help             this text`,
};

export const OVERVIEW = `usage: webgpu-restore <command> [options]

commands:
  denoise <inputs…>       denoise images (built-in DnCNN σ=25, or --weights / --model)
  upscale <inputs…>       super-resolve images with a ×2/×3/×4 model (--weights)
  inspect <checkpoint>    show what a checkpoint holds and which network it is
  convert <checkpoint>    write a checkpoint as safetensors with a JSON manifest
  compare <a> <b>         PSNR and SSIM between two images
  info                    the WebGPU adapter, its features and limits
  train                   train a denoiser or super-resolution network on your own images

Run 'webgpu-restore <command> --help' for a command's options (e.g. --weights, --out-dir, --tile).
  -h, --help              this text
  -v, --version           the version`;

export function usageFor(command?: string): string {
  return (command && COMMAND_USAGE[command]) || OVERVIEW;
}
