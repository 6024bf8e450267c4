using System.Reflection;
using ILGPU.Backends.OpenCL;
using ILGPU.Runtime.OpenCL;

namespace ZeroFL.Engine.Devices;

/// <summary>
/// The OpenCL compatibility mode: Mesa's rusticl driver on llvmpipe (a CPU), which runs the GPU
/// code paths (group shared memory, barriers, atomics) through a real OpenCL compiler and runtime
/// on a machine without a GPU. It is for testing those paths, not for speed.
/// <para>
/// ILGPU 1.5.3 refuses the device as it reports itself (OpenCL 3.0 without the generic address
/// space query), although rusticl's compiler accepts ILGPU's OpenCL 2.0 code. The mode overrides
/// two ILGPU properties of the device (non-public setters): the generic address space capability
/// and the device version (2.0). Rusticl lists the device only when <c>RUSTICL_ENABLE=llvmpipe</c>
/// is in the environment before the process starts. Dynamic shared memory aborts the process
/// there, so kernels that use it are refused when they load (<see cref="Kernels.KernelLaunch"/>).
/// </para>
/// </summary>
public static class OpenClCompatibility
{
    /// <summary>The environment variable (and value) that makes rusticl list llvmpipe.</summary>
    public const string EnableVariable = "RUSTICL_ENABLE";

    /// <summary>The value of <see cref="EnableVariable"/> the mode needs.</summary>
    public const string EnableValue = "llvmpipe";

    /// <summary>The line printed on stderr when the mode is selected.</summary>
    public static string Notice(string deviceName) =>
        $"zerofl: OpenCL compatibility mode on {deviceName} (Mesa rusticl on the CPU): runs the GPU kernels for testing, not for speed";

    /// <summary>What <c>zerofl devices</c> says about such a device.</summary>
    public const string Explanation =
        "compatibility mode: Mesa rusticl on llvmpipe (a CPU) reports no OpenCL 2.0 generic address space, " +
        "which ILGPU needs; ZeroFL overrides that for this driver, whose compiler accepts the code, and never " +
        "launches kernels with dynamic shared memory there. For testing GPU code paths; --device auto never picks it";

    /// <summary>True when <paramref name="device"/> is one ILGPU supports as it is (OpenCL 2.0+, generic address space).</summary>
    public static bool IsNativelySupported(CLDevice device) =>
        device.CLStdVersion >= CLBackend.MinimumVersion && device.Capabilities.GenericAddressSpace;

    /// <summary>True when <paramref name="device"/> is rusticl's llvmpipe, usable only in the compatibility mode.</summary>
    public static bool IsCompatibilityDevice(CLDevice device) =>
        !IsNativelySupported(device)
        && device.PlatformName.Contains("rusticl", StringComparison.OrdinalIgnoreCase)
        && device.Name.StartsWith("llvmpipe", StringComparison.OrdinalIgnoreCase);

    /// <summary>The OpenCL devices a context registers: the supported ones and rusticl's llvmpipe.</summary>
    public static bool Include(CLDevice device) => IsNativelySupported(device) || IsCompatibilityDevice(device);

    /// <summary>
    /// Whether the process was started with <c>RUSTICL_ENABLE=llvmpipe</c> (rusticl reads it once,
    /// when the OpenCL library loads; setting it later has no effect).
    /// </summary>
    public static bool EnabledInEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable(EnableVariable);
        return value is not null && value.Split(',').Any(v => v.Trim().Equals(EnableValue, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// Overrides the two capabilities ILGPU checks so that it creates an accelerator for a
    /// compatibility device. Tied to ILGPU 1.5.3: if its internals change, this throws
    /// <see cref="InvalidOperationException"/> naming the property instead of failing later.
    /// </summary>
    public static void Apply(CLDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        SetNonPublic(device.Capabilities, nameof(CLCapabilityContext.GenericAddressSpace), true);
        SetNonPublic(device, nameof(CLDevice.DeviceVersion), CLDeviceVersion.CL20);
    }

    private static void SetNonPublic(object target, string name, object value)
    {
        const BindingFlags flags = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        var setter = target.GetType().GetProperty(name, flags)?.GetSetMethod(nonPublic: true)
            ?? throw new InvalidOperationException(
                $"OpenCL compatibility mode: ILGPU's {target.GetType().Name}.{name} has no setter (ILGPU changed; the mode needs 1.5.3)");
        setter.Invoke(target, [value]);
    }
}
