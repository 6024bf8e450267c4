using CommandLine;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;

namespace ZeroFL.Cli.Commands;

/// <summary>Options of <c>zerofl devices</c>.</summary>
[Verb("devices", HelpText = "List the accelerators ILGPU sees and which one --device auto picks.")]
public sealed class DevicesOptions
{
}

/// <summary>Lists devices.</summary>
public static class DevicesCommand
{
    /// <summary>Prints one line per device and the auto choice.</summary>
    public static int Run(DevicesOptions options)
    {
        using var context = ComputeDevice.CreateContext();
        var devices = context.Devices.ToList();
        var auto = ComputeDevice.PickAuto(devices);
        Console.WriteLine($"{"device",-10} {"type",-7} {"memory",12} {"MPs",5} {"warp",5}  name");
        foreach (var group in devices.GroupBy(d => d.AcceleratorType))
        {
            int index = 0;
            foreach (var d in group)
            {
                string spec = $"{KindName(d.AcceleratorType)}:{index++}";
                string memory = d.AcceleratorType == AcceleratorType.CPU ? "host" : $"{d.MemorySize / (1024.0 * 1024 * 1024):F1} GiB";
                string mark = ReferenceEquals(d, auto) ? "  <- auto" : string.Empty;
                Console.WriteLine($"{spec,-10} {d.AcceleratorType,-7} {memory,12} {d.NumMultiprocessors,5} {d.WarpSize,5}  {d.Name}{mark}");
                if (ComputeDevice.NeedsCompatibilityMode(d))
                {
                    Console.WriteLine($"{string.Empty,-10} {OpenClCompatibility.Explanation}");
                }
            }
        }
        if (!devices.Any(d => d.AcceleratorType == AcceleratorType.Cuda))
        {
            Console.WriteLine("no CUDA device found");
        }
        if (!devices.Any(d => d.AcceleratorType == AcceleratorType.OpenCL))
        {
            Console.WriteLine(OpenClCompatibility.EnabledInEnvironment()
                ? "no OpenCL device usable by ILGPU found (it needs OpenCL 2.0+ with generic address spaces)"
                : $"no OpenCL device usable by ILGPU found (it needs OpenCL 2.0+ with generic address spaces; for Mesa rusticl's compatibility mode start with {OpenClCompatibility.EnableVariable}={OpenClCompatibility.EnableValue})");
        }
        return 0;
    }

    private static string KindName(AcceleratorType type) => type switch
    {
        AcceleratorType.Cuda => "cuda",
        AcceleratorType.OpenCL => "opencl",
        _ => "cpu",
    };
}
