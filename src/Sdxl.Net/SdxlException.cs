namespace Sdxl.Net;

/// <summary>A model folder or model file that cannot be used: missing, corrupt, or with an unexpected signature.</summary>
public class SdxlModelException : Exception
{
    /// <summary>Creates the exception with a message that names the component and what was expected.</summary>
    public SdxlModelException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    public SdxlModelException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A generation that ran but produced unusable numbers (NaN or infinity), with the likely cause in the message.</summary>
public class SdxlNumericException : Exception
{
    /// <summary>Creates the exception with a message that names the likely cause and the fix.</summary>
    public SdxlNumericException(string message) : base(message) { }
}
