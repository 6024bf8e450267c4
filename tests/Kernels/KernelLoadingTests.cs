using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ZeroFL.Kernels;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

/// <summary>
/// Kernels load through <see cref="KernelLaunch"/>, which refuses a kernel needing a feature the
/// device lacks before it is built or launched (rusticl aborts the process on dynamic shared memory).
/// </summary>
public sealed class KernelLoadingTests
{
    private Context context = null!;
    private Accelerator accelerator = null!;

    [OneTimeSetUp]
    public void CreateGroupedCpu()
    {
        context = Context.Create(builder => builder.CPU(new CPUDevice(4, 1, 1)).Math(MathMode.Fast32BitOnly));
        accelerator = context.GetCPUDevice(0).CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel);
    }

    [OneTimeTearDown]
    public void Dispose()
    {
        accelerator?.Dispose();
        context?.Dispose();
    }

    [Test]
    public void DynamicSharedMemoryIsRefusedWhereTheDeviceLacksIt()
    {
        var launch = new KernelLaunch(accelerator, new KernelFeatures(DynamicSharedMemory: false));
        var e = Assert.Throws<KernelNotSupportedException>(() => launch.LoadGrouped<ArrayView<float>, int, int, int>(DynamicSharedKernel));
        Assert.That(e!.Message, Does.Contain(nameof(DynamicSharedKernel)).And.Contain("dynamic shared memory"));
        Assert.DoesNotThrow(() => launch.LoadGrouped<ArrayView<float>, int, int, int>(StaticSharedKernel));
    }

    [Test]
    public void DynamicSharedMemoryLoadsAndRunsWhereTheDeviceHasIt()
    {
        var launch = new KernelLaunch(accelerator, KernelFeatures.All);
        var kernel = launch.LoadGrouped<ArrayView<float>, int, int, int>(DynamicSharedKernel);
        using var output = accelerator.Allocate1D<float>(4);
        var config = new KernelConfig(1, 4, SharedMemoryConfig.RequestDynamic<float>(4));
        kernel(config, output.View, 10, 0, 0);
        accelerator.Synchronize();
        Assert.That(output.GetAsArray1D(), Is.EqualTo(new[] { 13f, 12f, 11f, 10f }));
    }

    [Test]
    public void ImplicitlyGroupedKernelsLoadWithTheirThreadCount()
    {
        var launch = new KernelLaunch(accelerator, new KernelFeatures(DynamicSharedMemory: false));
        var kernel = launch.Load<ArrayView<float>, float, int>(FillKernel);
        using var output = accelerator.Allocate1D<float>(10);
        int threads = launch.Threads(output.Length);
        kernel(threads, output.View, 2.5f, threads);
        accelerator.Synchronize();
        Assert.That(output.GetAsArray1D(), Is.All.EqualTo(2.5f));
    }

    /// <summary>Reverses a thread's offset through dynamic shared memory (4 threads, 4 floats).</summary>
    private static void DynamicSharedKernel(ArrayView<float> output, int start, int unused1, int unused2)
    {
        var shared = SharedMemory.GetDynamic<float>();
        shared[Group.IdxX] = start + Group.IdxX;
        Group.Barrier();
        output[Group.IdxX] = shared[Group.DimX - 1 - Group.IdxX];
    }

    private static void StaticSharedKernel(ArrayView<float> output, int start, int unused1, int unused2)
    {
        var shared = SharedMemory.Allocate<float>(4);
        shared[Group.IdxX] = start + Group.IdxX;
        Group.Barrier();
        output[Group.IdxX] = shared[Group.DimX - 1 - Group.IdxX];
    }

    private static void FillKernel(Index1D index, ArrayView<float> output, float value, int stride)
    {
        for (long i = index; i < output.Length; i += stride)
        {
            output[i] = value;
        }
    }
}

/// <summary>
/// Zeroing views that start inside a buffer, on every device (rusticl's own fill rejects such
/// views, so GPU backends zero with a kernel).
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class ZeroTests(string device) : DeviceTest(device)
{
    [TestCase(0, 1000)]
    [TestCase(256, 3)]
    [TestCase(10, 990)]
    [TestCase(999, 1)]
    public void ZeroClearsExactlyTheView(int offset, int length)
    {
        var host = Enumerable.Range(1, 1000).Select(i => (float)i).ToArray();
        var view = Upload(host);
        Device.Kernels.Launch.Zero(view.SubView(offset, length));
        var after = Download(view);
        for (int i = 0; i < host.Length; i++)
        {
            float expected = i >= offset && i < offset + length ? 0f : host[i];
            Assert.That(after[i], Is.EqualTo(expected), $"element {i}");
        }
    }

    [Test]
    public void ZeroClearsExactlyALargeView()
    {
        // Past the CPU accelerator's 1 MB threshold, where the clear is split over the host lanes;
        // an odd start and length leave blocks that do not end on a cache line.
        const int length = 3 * (1 << 18) + 7, offset = 13;
        var host = Enumerable.Range(1, length + 2 * offset).Select(i => (float)i).ToArray();
        var view = Upload(host);
        Device.Kernels.Launch.Zero(view.SubView(offset, length));
        var after = Download(view);
        Assert.That(after.Take(offset), Is.EqualTo(host.Take(offset)));
        Assert.That(after.Skip(offset).Take(length), Is.All.EqualTo(0f));
        Assert.That(after.Skip(offset + length), Is.EqualTo(host.Skip(offset + length)));
    }

    [Test]
    public void ZeroClearsIntViews()
    {
        var view = Upload(Enumerable.Range(1, 100).ToArray());
        Device.Kernels.Launch.Zero(view.SubView(50, 50));
        var after = view.Download(Device);
        Assert.That(after.Take(50), Is.EqualTo(Enumerable.Range(1, 50)));
        Assert.That(after.Skip(50), Is.All.EqualTo(0));
    }
}

/// <summary>Each accelerator loads its own kernels: the CPU engine's kernels are never compiled for GPU backends.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class KernelChoiceTests(string device) : DeviceTest(device)
{
    /// <summary>Kernels that exist for the CPU accelerator's SIMD engines and host planning only.</summary>
    private static readonly string[] CpuOnly =
    [
        "SparseConvKernels.PackKernel", "SparseConvKernels.PackTransposedKernel", "SparseConvKernels.ReduceCopiesKernel",
        "SparseConvKernels.ForwardPackedKernel", "SparseConvKernels.BackwardInputPackedKernel", "SparseConvKernels.BackwardWeightPackedKernel",
        "CsrKernels.StageSelectedRowsKernel", "CsrKernels.CopyStagedRowsKernel", "CsrKernels.CountSelectedRowsKernel", "CsrKernels.ScatterSelectedRowsKernel",
        "TopKKernels.ChunkStageKernel", "TopKKernels.ChunkCopyKernel", "TopKKernels.PrivateHistogramKernel",
        "TopKKernels.MaskKernel", "TopKKernels.ChunkCountKernel", "TopKKernels.TrimTiesKernel", "TopKKernels.ScatterKernel",
        "GemmKernels.GemmPackedKernel",
    ];

    /// <summary>Kernels that need a GPU's groups and shared memory.</summary>
    private static readonly string[] GpuOnly =
    [
        "GemmKernels.GemmTiledKernel", "TopKKernels.ScanChunksKernel", "TopKKernels.DeviceMaskKernel", "TopKKernels.DeviceChunkCountKernel",
        "TopKKernels.DeviceTrimTiesKernel", "TopKKernels.DeviceScatterKernel",
    ];

    [Test]
    public void TheLibraryLoadsTheKernelsOfItsKindOfBackend()
    {
        var loaded = Device.Kernels.Loaded;
        Assert.That(loaded, Has.Count.GreaterThan(30));
        Assert.That(loaded, Is.Unique);
        var (expected, excluded) = Device.IsCpu ? (CpuOnly, GpuOnly) : (GpuOnly, CpuOnly);
        Assert.That(expected.Except(loaded), Is.Empty, "kernels of this kind of backend that did not load");
        Assert.That(excluded.Intersect(loaded), Is.Empty, "kernels of the other kind that loaded");
    }

    [Test]
    public void ACpuKernelCannotLoadOnAGpuBackend()
    {
        var launch = Device.Kernels.Launch;
        if (Device.IsCpu)
        {
            Assert.DoesNotThrow(() => launch.Load<ArrayView<float>, ArrayView<int>, int, int, int, uint, int>(TopKKernels.ChunkCountKernel));
            return;
        }
        var error = Assert.Throws<KernelNotSupportedException>(() => launch.Load<ArrayView<float>, ArrayView<int>, int, int, int, uint, int>(TopKKernels.ChunkCountKernel));
        Assert.That(error!.Message, Does.Contain("TopKKernels.ChunkCountKernel").And.Contain("CPU accelerator only"));
    }

    [Test]
    public void EveryKernelIsForTheCpuOrCompiledForGpusNeverBoth()
    {
        const System.Reflection.BindingFlags flags = System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic;
        var both = typeof(KernelLibrary).Assembly.GetTypes().SelectMany(t => t.GetMethods(flags))
            .Where(m => m.GetCustomAttributes(typeof(CpuKernelAttribute), false).Length > 0 && m.GetCustomAttributes(typeof(GpuKernelAttribute), false).Length > 0)
            .Select(m => m.Name);
        Assert.That(both, Is.Empty);
    }
}
