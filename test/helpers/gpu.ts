import type { GPUContext } from '../../src/gpu/context';

/**
 * One GPU context per test file. In Node it comes from Dawn; in the browser suite from navigator.gpu. Tests
 * import `getTestContext` and never care which.
 */
let ctx: Promise<GPUContext> | undefined;

export function getTestContext(): Promise<GPUContext> {
  ctx ??= (async () => {
    if (typeof navigator !== 'undefined' && (navigator as Navigator).gpu) {
      const { requestContext } = await import('../../src/gpu/context');
      return requestContext((navigator as Navigator).gpu, { debug: true });
    }
    const { createNodeContext } = await import('../../src/gpu/node-gpu');
    return createNodeContext({ debug: true });
  })();
  return ctx;
}
