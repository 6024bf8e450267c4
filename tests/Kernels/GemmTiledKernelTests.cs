using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

/// <summary>
/// The GPU shared-memory tiled GEMM (and the convolutions on top of it) run on a CPU accelerator
/// shaped like a GPU (256 threads per group), so a CPU-only CI checks its results, not only that it
/// compiles to PTX. Small sizes only: every simulated thread is an OS thread here.
/// </summary>
public sealed class GemmTiledKernelTests
{
    private Context context = null!;
    private Accelerator accelerator = null!;
    private GemmKernels gemm = null!;
    private Conv2dKernels conv = null!;

    [OneTimeSetUp]
    public void CreateGpuShapedCpu()
    {
        context = Context.Create(builder => builder
            .CPU(new CPUDevice(32, GemmKernels.TiledGroupSize / 32, 1))
            .Math(MathMode.Fast32BitOnly)
            .RegisterSimdRedirects());
        accelerator = context.GetCPUDevice(0).CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel);
        var launch = new KernelLaunch(accelerator);
        gemm = new GemmKernels(launch, forceTiled: true);
        conv = new Conv2dKernels(launch, gemm);
    }

    [OneTimeTearDown]
    public void Dispose()
    {
        accelerator?.Dispose();
        context?.Dispose();
    }

    [TestCase(false, false, 1, 1, 1)]
    [TestCase(false, true, 65, 70, 33)]
    [TestCase(true, false, 70, 65, 17)]
    [TestCase(true, true, 3, 129, 20)]
    public void TiledGemmMatchesReference(bool transA, bool transB, int m, int n, int k)
    {
        int lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 3;
        var a = Numerics.Random((transA ? k : m) * lda, 41);
        var b = Numerics.Random((transB ? n : k) * ldb, 42);
        var c0 = Numerics.Random(m * ldc, 43);
        using var ad = accelerator.Allocate1D(a);
        using var bd = accelerator.Allocate1D(b);
        using var cd = accelerator.Allocate1D(c0);
        gemm.Run(transA, transB, m, n, k, 0.75f, ad.View, lda, bd.View, ldb, 0.5f, cd.View, ldc);
        var expected = (float[])c0.Clone();
        GemmReference.Gemm(transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, expected, ldc);
        Numerics.AssertClose(expected, cd.GetAsArray1D(), 1e-4f, 1e-4f, "tiled gemm");
    }

    [Test]
    public void TiledConvolutionMatchesReference()
    {
        var g = new ConvGeometry(2, 3, 7, 6, 4, 3, 3, 2, 1);
        var x = Numerics.Random((int)g.InputLength, 51);
        var w = Numerics.Random((int)g.WeightLength, 52);
        var dy = Numerics.Random((int)g.OutputLength, 53);
        using var xd = accelerator.Allocate1D(x);
        using var wd = accelerator.Allocate1D(w);
        using var yd = accelerator.Allocate1D<float>(g.OutputLength);
        using var dyd = accelerator.Allocate1D(dy);
        using var dxd = accelerator.Allocate1D<float>(g.InputLength);
        using var dwd = accelerator.Allocate1D<float>(g.WeightLength);
        using var workspace = accelerator.Allocate1D<float>(1);
        dxd.MemSetToZero();
        dwd.MemSetToZero();
        conv.Forward(g, xd.View, wd.View, yd.View, workspace.View);
        conv.BackwardInput(g, dyd.View, wd.View, dxd.View, workspace.View);
        conv.BackwardWeight(g, dyd.View, xd.View, dwd.View, workspace.View);

        Numerics.AssertClose(ConvReference.Forward(g, x, w), yd.GetAsArray1D(), 1e-4f, 1e-4f, "tiled conv forward");
        var dx = new float[g.InputLength];
        ConvReference.BackwardInput(g, dy, w, dx);
        Numerics.AssertClose(dx, dxd.GetAsArray1D(), 1e-4f, 1e-4f, "tiled conv backward input");
        var dw = new float[g.WeightLength];
        ConvReference.BackwardWeight(g, dy, x, dw);
        Numerics.AssertClose(dw, dwd.GetAsArray1D(), 1e-4f, 1e-4f, "tiled conv backward weight");
    }
}
