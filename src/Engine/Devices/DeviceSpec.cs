namespace ZeroFL.Engine.Devices;

/// <summary>Which kind of accelerator the user asked for.</summary>
public enum DeviceKind
{
    /// <summary>CUDA if present, then OpenCL, then the CPU accelerator.</summary>
    Auto,

    /// <summary>ILGPU's CPU accelerator, configured for speed.</summary>
    Cpu,

    /// <summary>An NVIDIA GPU through CUDA.</summary>
    Cuda,

    /// <summary>Any OpenCL 2.0+ GPU (AMD, Intel, NVIDIA).</summary>
    OpenCL,
}

/// <summary>A parsed <c>--device</c> value: <c>auto|cpu|cuda|opencl</c>, optionally <c>:index</c>.</summary>
public readonly record struct DeviceSpec(DeviceKind Kind, int Index)
{
    /// <summary>The default: <c>auto</c>.</summary>
    public static DeviceSpec Auto => new(DeviceKind.Auto, 0);

    /// <summary>Parses a <c>--device</c> value; throws <see cref="FormatException"/> with a one-line message.</summary>
    public static DeviceSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string trimmed = text.Trim().ToLowerInvariant();
        int index = 0;
        int colon = trimmed.IndexOf(':');
        if (colon >= 0)
        {
            string indexText = trimmed[(colon + 1)..];
            if (!int.TryParse(indexText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out index))
            {
                throw new FormatException($"invalid device index '{indexText}' in '{text}' (expected a number, e.g. cuda:0)");
            }
            trimmed = trimmed[..colon];
        }
        DeviceKind kind = trimmed switch
        {
            "auto" => DeviceKind.Auto,
            "cpu" => DeviceKind.Cpu,
            "cuda" => DeviceKind.Cuda,
            "opencl" => DeviceKind.OpenCL,
            _ => throw new FormatException($"unknown device '{text}' (expected auto, cpu, cuda or opencl, optionally with :index)"),
        };
        if (kind == DeviceKind.Auto && colon >= 0)
        {
            throw new FormatException($"'auto' takes no index: '{text}'");
        }
        return new DeviceSpec(kind, index);
    }

    /// <inheritdoc />
    public override string ToString() => Kind == DeviceKind.Auto ? "auto" : $"{Kind.ToString().ToLowerInvariant()}:{Index}";
}
