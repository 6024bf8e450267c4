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

    private ComputeDevice(Context context, Accelerator accelerator, DeviceSpec resolved, bool compatibilityMode)
    {
        this.context = context;
        Accelerator = accelerator;
        Spec = resolved;
        IsCompatibilityMode = compatibilityMode;
        // Rusticl aborts the process on ILGPU's dynamic shared memory: such kernels are refused at load.
        Kernels = new KernelLibrary(accelerator, new KernelFeatures(DynamicSharedMemory: !compatibilityMode));
    }

    /// <summary>The accelerator every kernel runs on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The device actually chosen (never <see cref="DeviceKind.Auto"/>).</summary>
    public DeviceSpec Spec { get; }

    /// <summary>Every kernel family, loaded for this accelerator.</summary>
    public KernelLibrary Kernels { get; }

    /// <summary>
    /// True for the OpenCL compatibility mode (Mesa rusticl on llvmpipe, see
    /// <see cref="OpenClCompatibility"/>): GPU code paths on a CPU, for testing.
    /// </summary>
    public bool IsCompatibilityMode { get; }

    /// <summary>The one line a CLI prints on stderr when the device is in a compatibility mode (else null).</summary>
    public string? Notice => IsCompatibilityMode ? OpenClCompatibility.Notice(Accelerator.Name) : null;

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
            .OpenCL(OpenClCompatibility.Include)
            .CPU(FastCpuDevice())
            .EnableAlgorithms()
            .Math(MathMode.Fast32BitOnly)
            .Optimize(OptimizationLevel.O1)
            .RegisterSimdRedirects());
    }

    /// <summary>
    /// The device <c>auto</c> picks among <paramref name="devices"/>: CUDA, then OpenCL, then CPU;
    /// never an OpenCL device that needs the compatibility mode.
    /// </summary>
    public static Device? PickAuto(IReadOnlyList<Device> devices)
    {
        return devices.FirstOrDefault(d => d.AcceleratorType == AcceleratorType.Cuda)
            ?? devices.FirstOrDefault(d => d is CLDevice cl && !OpenClCompatibility.IsCompatibilityDevice(cl))
            ?? devices.FirstOrDefault(d => d.AcceleratorType == AcceleratorType.CPU);
    }

    /// <summary>True when <paramref name="device"/> runs only in the OpenCL compatibility mode.</summary>
    public static bool NeedsCompatibilityMode(Device device) =>
        device is CLDevice cl && OpenClCompatibility.IsCompatibilityDevice(cl);

    /// <summary>
    /// Opens the device named by <paramref name="spec"/>; throws with a one-line message if absent.
    /// A device in a compatibility mode writes its <see cref="Notice"/> to <paramref name="notices"/>.
    /// </summary>
    public static ComputeDevice Open(DeviceSpec spec, TextWriter? notices = null)
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
                    string hint = spec.Kind != DeviceKind.OpenCL ? string.Empty
                        : OpenClCompatibility.EnabledInEnvironment()
                            ? " (ILGPU needs OpenCL 2.0 or newer with generic address spaces)"
                            : $" (ILGPU needs OpenCL 2.0 or newer with generic address spaces; Mesa rusticl's compatibility mode also needs {OpenClCompatibility.EnableVariable}={OpenClCompatibility.EnableValue} set before zerofl starts)";
                    throw new InvalidOperationException($"no {spec.Kind} device found{hint}; run 'zerofl devices' to see what is available");
                }
                if (spec.Index >= matching.Count)
                {
                    throw new InvalidOperationException($"device {spec} does not exist: {matching.Count} {spec.Kind} device(s) found");
                }
                device = matching[spec.Index];
            }
            int index = devices.Where(d => d.AcceleratorType == device.AcceleratorType).ToList().IndexOf(device);
            bool compatibility = NeedsCompatibilityMode(device);
            if (compatibility)
            {
                OpenClCompatibility.Apply((CLDevice)device);
            }
            Accelerator accelerator = device is CPUDevice cpu
                ? cpu.CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel)
                : device.CreateAccelerator(context);
            try
            {
                var opened = new ComputeDevice(context, accelerator, new DeviceSpec(kind, index), compatibility);
                if (opened.Notice is { } notice)
                {
                    notices?.WriteLine(notice);
                }
                return opened;
            }
            catch
            {
                accelerator.Dispose();
                throw;
            }
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

    /// <summary>Waits for every launched kernel (free on the CPU accelerator; counted in <see cref="Traffic"/>).</summary>
    public void Synchronize() => Kernels.Launch.Synchronize();

    /// <summary>Every host synchronisation and copy made through this device's kernels and engine.</summary>
    public HostTraffic Traffic => Kernels.Launch.Traffic;

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
