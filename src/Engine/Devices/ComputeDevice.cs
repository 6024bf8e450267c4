using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using ZeroFL.Kernels;

namespace ZeroFL.Engine.Devices;

/// <summary>
/// One ILGPU context and accelerator with every kernel loaded once. Everything that touches device
/// memory takes a <see cref="ComputeDevice"/>. Dispose it last.
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    private readonly Context context;

    private ComputeDevice(Context context, Accelerator accelerator, DeviceSpec resolved)
    {
        this.context = context;
        Accelerator = accelerator;
        Spec = resolved;
        Kernels = new KernelLibrary(accelerator);
    }

    /// <summary>The accelerator every kernel runs on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The device actually chosen (never <see cref="DeviceKind.Auto"/>).</summary>
    public DeviceSpec Spec { get; }

    /// <summary>Every kernel family, loaded for this accelerator.</summary>
    public KernelLibrary Kernels { get; }

    /// <summary>True on ILGPU's CPU accelerator.</summary>
    public bool IsCpu => Accelerator.AcceleratorType == AcceleratorType.CPU;

    /// <summary>A one-line description such as "cuda:0 NVIDIA H100 (80 GB)".</summary>
    public string Description => $"{Spec} {Accelerator.Name}";

    /// <summary>
    /// The CPU accelerator's shape: one simulated thread per core in a single group, which keeps
    /// every core busy with the least per-thread and per-launch cost (see ENGINE-NOTES).
    /// </summary>
    public static CPUDevice FastCpuDevice()
    {
        int cores = Math.Max(1, Environment.ProcessorCount);
        return new CPUDevice(cores, 1, 1);
    }

    /// <summary>Creates a context with every backend this build supports and the SIMD redirects.</summary>
    public static Context CreateContext()
    {
        return Context.Create(builder => builder
            .Cuda()
            .OpenCL()
            .CPU(FastCpuDevice())
            .EnableAlgorithms()
            .Math(MathMode.Fast32BitOnly)
            .Optimize(OptimizationLevel.O1)
            .RegisterSimdRedirects());
    }

    /// <summary>The device <c>auto</c> picks among <paramref name="devices"/>: CUDA, then OpenCL, then CPU.</summary>
    public static Device? PickAuto(IReadOnlyList<Device> devices)
    {
        return devices.FirstOrDefault(d => d.AcceleratorType == AcceleratorType.Cuda)
            ?? devices.FirstOrDefault(d => d.AcceleratorType == AcceleratorType.OpenCL)
            ?? devices.FirstOrDefault(d => d.AcceleratorType == AcceleratorType.CPU);
    }

    /// <summary>Opens the device named by <paramref name="spec"/>; throws with a one-line message if absent.</summary>
    public static ComputeDevice Open(DeviceSpec spec)
    {
        var context = CreateContext();
        try
        {
            var devices = context.Devices.ToList();
            Device device;
            DeviceKind kind;
            if (spec.Kind == DeviceKind.Auto)
            {
                device = PickAuto(devices) ?? throw new InvalidOperationException("no ILGPU device found");
                kind = KindOf(device.AcceleratorType);
            }
            else
            {
                kind = spec.Kind;
                var type = TypeOf(spec.Kind);
                var matching = devices.Where(d => d.AcceleratorType == type).ToList();
                if (matching.Count == 0)
                {
                    string hint = spec.Kind == DeviceKind.OpenCL
                        ? " (ILGPU needs OpenCL 2.0 or newer with generic address spaces)"
                        : string.Empty;
                    throw new InvalidOperationException($"no {spec.Kind} device found{hint}; run 'zerofl devices' to see what is available");
                }
                if (spec.Index >= matching.Count)
                {
                    throw new InvalidOperationException($"device {spec} does not exist: {matching.Count} {spec.Kind} device(s) found");
                }
                device = matching[spec.Index];
            }
            int index = devices.Where(d => d.AcceleratorType == device.AcceleratorType).ToList().IndexOf(device);
            Accelerator accelerator = device is CPUDevice cpu
                ? cpu.CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel)
                : device.CreateAccelerator(context);
            return new ComputeDevice(context, accelerator, new DeviceSpec(kind, index));
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Bytes of device memory in use by this accelerator, where the backend reports it (else null).</summary>
    public long? FreeMemoryBytes => Accelerator is CudaAccelerator cuda ? cuda.GetFreeMemory() : null;

    /// <summary>Allocates a device buffer of <paramref name="length"/> floats (contents undefined).</summary>
    public MemoryBuffer1D<float, Stride1D.Dense> Allocate(long length) => Accelerator.Allocate1D<float>(length);

    /// <summary>Waits for every launched kernel (free on the CPU accelerator).</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <inheritdoc />
    public void Dispose()
    {
        Accelerator.Dispose();
        context.Dispose();
    }

    private static AcceleratorType TypeOf(DeviceKind kind) => kind switch
    {
        DeviceKind.Cpu => AcceleratorType.CPU,
        DeviceKind.Cuda => AcceleratorType.Cuda,
        DeviceKind.OpenCL => AcceleratorType.OpenCL,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static DeviceKind KindOf(AcceleratorType type) => type switch
    {
        AcceleratorType.CPU => DeviceKind.Cpu,
        AcceleratorType.Cuda => DeviceKind.Cuda,
        AcceleratorType.OpenCL => DeviceKind.OpenCL,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
